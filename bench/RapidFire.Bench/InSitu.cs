using System.Diagnostics;
using System.Globalization;
using System.Text;
using nietras.SeparatedValues;
using StbImageSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Bench;

/// <summary>
/// Issue 14: in-situ MNIST ESFs (<c>id,label,p0..p783</c>, pixel values 0..255) made from the PNG ESFs, and the
/// hand-written TorchSharp loop a competent user writes without RapidFire, the limit the runtime is measured against.
/// </summary>
public static class InSitu
{
    /// <summary>
    /// Writes <paramref name="rows"/> rows of a PNG ESF (<c>id,filepath,label</c>) as pixel columns, the whole set
    /// <paramref name="repeat"/> times (ids kept unique).
    /// </summary>
    public static void WriteCsv(string pngEsf, string objectsDir, string outCsv, int rows, int repeat = 1)
    {
        var source = new List<(int Label, byte[] Pixels)>();
        using (var reader = Sep.Reader().FromFile(pngEsf))
            foreach (var row in reader)
            {
                if (source.Count == rows) break;
                var image = ImageResult.FromMemory(File.ReadAllBytes(Path.Combine(objectsDir, row["filepath"].ToString())), ColorComponents.Grey);
                source.Add((row["label"].Parse<int>(), image.Data));
            }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outCsv))!);
        using var output = new StreamWriter(outCsv, false, new UTF8Encoding(false));
        output.Write("id,label");
        for (var p = 0; p < 784; p++) output.Write($",p{p}");
        output.Write('\n');
        var line = new StringBuilder();
        for (int r = 0, id = 0; r < repeat; r++)
            foreach (var (label, pixels) in source)
            {
                line.Clear().Append(id++).Append(',').Append(label);
                foreach (var v in pixels) line.Append(',').Append(v);
                output.Write(line.Append('\n'));
            }
    }

    /// <summary>The figures of one hand-written run.</summary>
    public sealed record LoopResult(double ReadSeconds, double TrainSeconds, double[] EpochSeconds, double ValidationAccuracy);

    /// <summary>
    /// The hand-written loop: the CSV read once into one <c>[N, 784]</c> tensor, a <c>randperm</c> per epoch and an
    /// <c>index_select</c> per minibatch, an MLP 784-<paramref name="hidden"/>-10 with Adam, libtorch's default threads
    /// (the cores); the validation rows evaluated after every epoch, as the runtime does.
    /// </summary>
    public static LoopResult HandWritten(string trainCsv, string validationCsv, int epochs, int hidden = 256, double lr = 0.001, int batch = 64, long seed = 42)
    {
        var clock = Stopwatch.StartNew();
        var (x, y) = Load(trainCsv);
        var (vx, vy) = Load(validationCsv);
        var read = clock.Elapsed.TotalSeconds;
        torch.manual_seed(seed);
        var model = nn.Sequential(("fc1", nn.Linear(784, hidden)), ("relu", nn.ReLU()), ("fc2", nn.Linear(hidden, 10)));
        return Train(model, x, y, vx, vy, epochs, lr, batch, seed, clock, read);
    }

    private static LoopResult Train(nn.Module model, Tensor x, Tensor y, Tensor vx, Tensor vy, int epochs, double lr, int batch, long seed, Stopwatch clock, double read)
    {
        var optimizer = torch.optim.Adam(model.parameters(), lr);
        var n = x.shape[0];
        var generator = new torch.Generator((ulong)seed);
        var times = new double[epochs];
        double accuracy = 0;
        for (var epoch = 0; epoch < epochs; epoch++)
        {
            var start = clock.Elapsed.TotalSeconds;
            model.train();
            using (var perm = torch.randperm(n, generator: generator))
                for (long b = 0; b < n; b += batch)
                {
                    using var scope = torch.NewDisposeScope();
                    var index = perm.narrow(0, b, Math.Min(batch, n - b));
                    var logits = ((nn.Module<Tensor, Tensor>)model).forward(x.index_select(0, index));
                    var loss = nn.functional.cross_entropy(logits, y.index_select(0, index));
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                }
            model.eval();
            using (torch.no_grad())
            {
                long correct = 0;
                for (long b = 0; b < vx.shape[0]; b += batch)
                {
                    using var scope = torch.NewDisposeScope();
                    var count = Math.Min(batch, vx.shape[0] - b);
                    var logits = ((nn.Module<Tensor, Tensor>)model).forward(vx.narrow(0, b, count));
                    correct += logits.argmax(1).eq(vy.narrow(0, b, count)).sum().item<long>();
                }
                accuracy = (double)correct / vx.shape[0];
            }
            times[epoch] = clock.Elapsed.TotalSeconds - start;
        }
        return new LoopResult(read, clock.Elapsed.TotalSeconds - read, times, accuracy);
    }

    /// <summary>
    /// The hand-written loop of the README's PNG example: every PNG decoded once (normalized as the spec does) into one
    /// <c>[N, 1, 28, 28]</c> tensor, then the example's CNN (hidden 128, dropout 0.1) with Adam, trained as
    /// <see cref="HandWritten"/> trains the MLP.
    /// </summary>
    public static LoopResult HandWrittenPng(string dataDir, int epochs, double lr = 0.003, int batch = 64, long seed = 42)
    {
        var clock = Stopwatch.StartNew();
        var (x, y) = LoadPngs(dataDir, "train.csv");
        var (vx, vy) = LoadPngs(dataDir, "validation.csv");
        var read = clock.Elapsed.TotalSeconds;
        torch.manual_seed(seed);
        var model = nn.Sequential(("conv1", nn.Conv2d(1, 16, 3, padding: 1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(16, 32, 3, padding: 1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(32 * 7 * 7, 128)), ("relu3", nn.ReLU()), ("dropout", nn.Dropout(0.1)), ("fc2", nn.Linear(128, 10)));
        return Train(model, x, y, vx, vy, epochs, lr, batch, seed, clock, read);
    }

    private static (Tensor X, Tensor Y) LoadPngs(string dataDir, string esf)
    {
        var images = new List<Tensor>();
        var labels = new List<long>();
        using (var reader = Sep.Reader().FromFile(Path.Combine(dataDir, esf)))
            foreach (var row in reader)
            {
                images.Add(RapidFire.Spec.Vision.Images.Read(Path.Combine(dataDir, row["filepath"].ToString()), channels: 1));
                labels.Add(row["label"].Parse<long>());
            }
        using var mean = 0.1307f.ToScalar();
        using var std = 0.3081f.ToScalar();
        var x = torch.stack(images).sub_(mean).div_(std);
        foreach (var image in images) image.Dispose();
        return (x, torch.tensor(labels.ToArray()));
    }

    /// <summary>Reads an in-situ CSV once: pixels scaled to [0, 1] as one float tensor, labels as int64.</summary>
    private static (Tensor X, Tensor Y) Load(string csv)
    {
        var pixels = new List<float>();
        var labels = new List<long>();
        using (var reader = Sep.Reader().FromFile(csv))
            foreach (var row in reader)
            {
                labels.Add(row["label"].Parse<long>());
                for (var p = 2; p < row.ColCount; p++) pixels.Add(row[p].Parse<float>());
            }
        using var scale = (1f / 255f).ToScalar();
        return (torch.tensor(pixels.ToArray(), [labels.Count, 784]).mul_(scale), torch.tensor(labels.ToArray()));
    }

    /// <summary>The command line of the hand-written side: <c>handloop TRAIN.csv VALIDATION.csv EPOCHS</c>, printing its figures.</summary>
    public static void Run(string[] args)
    {
        var result = args[0] == "png"
            ? HandWrittenPng(args[1], int.Parse(args[2], CultureInfo.InvariantCulture))
            : HandWritten(args[0], args[1], int.Parse(args[2], CultureInfo.InvariantCulture));
        Console.WriteLine(FormattableString.Invariant(
            $"hand-written loop: read {result.ReadSeconds:0.000} s, train {result.TrainSeconds:0.000} s, epochs {string.Join(" ", result.EpochSeconds.Select(e => e.ToString("0.000", CultureInfo.InvariantCulture)))}, val top-1 {result.ValidationAccuracy:0.000}"));
    }
}
