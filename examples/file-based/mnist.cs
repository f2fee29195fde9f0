// A RapidFire.NET experiment in one file: `dotnet run mnist.cs` (or `dotnet run mnist.cs -- EPOCHS`).
// The MLSpec is a class below; the top-level code builds an Experiment, trains a grid of 4 configs concurrently, prints
// the results and tests every run. The data is RapidFire.Samples' 1,500 real MNIST digits, written into ./data.
#:package RapidFire@0.1.0
#:package RapidFire.Samples@0.1.0
// a file-based app is AOT-ready by default, which turns off reflection-based JSON: RapidFire's journal uses it
#:property PublishAot=false

using System.Globalization;
using RapidFire.Host;
using RapidFire.Samples;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using TorchSharp;
using static TorchSharp.torch;

var epochs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
var data = MnistPixels.Load("data");
var configs = ConfigGroup.FromJson($$"""
    {
      "search": "grid",
      "user_knobs": { "hidden": [64, 256] },
      "train": { "epochs": {{epochs}}, "batch_size": 64, "optimizer": { "name": "Adam", "args": { "lr": [0.001, 0.003] } } },
      "named_metrics": ["top1_accuracy"]
    }
    """, "mnist.cs");

using var experiment = new Experiment($"mnist-{DateTime.Now:yyyyMMdd-HHmmss}");
Console.WriteLine($"training {configs.Expand().Count} configs concurrently, {epochs} epochs, into {experiment.Path}");
var fit = experiment.RunFit(SpecSource.Of<PixelsSpec>(), configs, data);

Console.WriteLine($"{"run",-4} {"status",-10} {"hidden",6} {"lr",6} {"epochs",6} {"train loss",10} {"val top1",8}");
foreach (var run in fit.Runs)
{
    var knobs = run.Config.Leaves().ToDictionary(k => k.Key, k => k.Value);
    var top1 = run.ValidationHistory.Count > 0 ? run.ValidationHistory[^1]["top1_accuracy"] : double.NaN;
    Console.WriteLine($"{run.RunId,-4} {run.Status,-10} {knobs["hidden"],6} {knobs["optimizer.args.lr"],6} {run.EpochsDone,6} {run.LastTrainLoss,10:F4} {top1,8:F3}");
}

var test = experiment.RunTest();
Console.WriteLine($"test ({test.Checkpoint} checkpoints):");
foreach (var run in test.Runs)
    Console.WriteLine(run.Error is { } error
        ? $"  run {run.RunId}: {error}"
        : $"  run {run.RunId}: loss {run.Metrics["loss"]:F4}, top1_accuracy {run.Metrics["top1_accuracy"]:F3}");

/// <summary>An MLP over the 784 pixel columns of each ESF row, as examples/mnist-insitu's spec.</summary>
public sealed class PixelsSpec : MLSpec
{
    // Kept as a Scalar: an implicit float-to-Scalar conversion can be finalized while libtorch still reads it.
    private static readonly Scalar Scale = (1f / 255f).ToScalar();

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        var example = new Dictionary<string, object> { ["pixels"] = torch.tensor(row.GetSingles("p0", "p783")).mul_(Scale) };
        if (mode != Mode.Predict)
            example["labels"] = torch.tensor(row.GetInt64("label"));
        return example;
    }

    public override nn.Module CreateModel(Config cfg)
    {
        var hidden = cfg.Get("hidden", 256);
        return nn.Sequential(("fc1", nn.Linear(28 * 28, hidden)), ("relu", nn.ReLU()), ("fc2", nn.Linear(hidden, 10)));
    }

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
    {
        var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["pixels"]);
        var outputs = new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1) };
        if (mode == Mode.Predict)
            return outputs;
        var labels = minibatch["labels"];
        outputs["targets"] = labels;
        return (nn.functional.cross_entropy(logits, labels), outputs);
    }
}
