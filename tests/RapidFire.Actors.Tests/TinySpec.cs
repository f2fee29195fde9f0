using Microsoft.Data.Analysis;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Tests;

/// <summary>
/// A small real spec for runtime tests: a 2-class MLP over 4 in-situ features. Knobs steer it into the situations
/// the runtime must handle: <c>fail</c> (<c>rowprep:ID</c>, <c>hang:ID</c>: RowPrep of row ID does not return for 30 s, <c>nan</c>, <c>oom</c> on a shard of more than 4 rows;
/// <c>backward</c>: a native libtorch fault in every backward pass, <c>backward:TOKEN:N</c>: in the Nth training
/// minibatch of the runs naming TOKEN only), <c>sleep_ms</c> per minibatch, <c>gate</c> (NAME: every training minibatch waits
/// until the test opens <see cref="Gate"/>(NAME), at most 30 s),
/// <c>converge_after</c> epochs, <c>dropout</c>, <c>list_metric</c> (a non-tensor metric: the rows of each minibatch part).
/// </summary>
public sealed class TinySpec : MLSpec
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ManualResetEventSlim> Gates = new();

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> Waiting = new();

    /// <summary>The gate that the runs with the knob <c>gate</c> = <paramref name="name"/> wait on in each training minibatch (created open).</summary>
    public static ManualResetEventSlim Gate(string name) => Gates.GetOrAdd(name, _ => new ManualResetEventSlim(true));

    /// <summary>How many training minibatches are waiting at gate <paramref name="name"/> now.</summary>
    public static int WaitingAt(string name) => Waiting.GetValueOrDefault(name);

    public override object RowPrep(Row row, Spec.Config cfg, Mode mode)
    {
        if (cfg.Get("fail", "") == $"rowprep:{row.Id}") throw new InvalidOperationException($"cannot prepare row {row.Id}");
        if (cfg.Get("fail", "") == $"hang:{row.Id}") Thread.Sleep(TimeSpan.FromSeconds(30)); // stuck, as far as a test can tell
        var x = new[] { row.GetSingle("x0"), row.GetSingle("x1"), row.GetSingle("x2"), row.GetSingle("x3") };
        return new Dictionary<string, object> { ["x"] = torch.tensor(x), ["y"] = torch.tensor(row.GetInt64("label")) };
    }

    public override nn.Module CreateModel(Spec.Config cfg)
    {
        var hidden = cfg.Get("hidden", 8);
        return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Dropout(cfg.Get("dropout", 0.0)), nn.Linear(hidden, 2));
    }

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Spec.Config cfg, Mode mode)
    {
        if (cfg.Get("sleep_ms", 0) is var sleep and > 0) Thread.Sleep(sleep);
        if (mode == Mode.Train && cfg.Get("gate", "") is { Length: > 0 } gate)
        {
            Waiting.AddOrUpdate(gate, 1, (_, n) => n + 1);
            try
            {
                if (!Gate(gate).Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException($"gate {gate} stayed closed for 30 s");
            }
            finally
            {
                Waiting.AddOrUpdate(gate, 0, (_, n) => n - 1);
            }
        }
        // libtorch's words when a device runs out of memory, as TorchSharp throws them
        if (cfg.Get("fail", "") == "oom" && minibatch.Size > 4)
            throw new System.Runtime.InteropServices.ExternalException("CUDA out of memory. Tried to allocate 20.00 GiB");
        var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["x"]);
        var loss = nn.functional.cross_entropy(logits, minibatch["y"]);
        if (cfg.Get("fail", "") == "nan") loss = loss * double.NaN;
        // A backward pass here frees the graph: libtorch throws in the runtime's own backward (an ExternalException in
        // its "loss.backward" step, not in this method).
        if (mode == Mode.Train && NativeFault(cfg.Get("fail", ""))) loss.backward();
        return (loss, new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1), ["targets"] = minibatch["y"] });
    }

    public override IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
        Minibatch minibatch, Spec.Config cfg, Mode mode)
    {
        var metrics = new Dictionary<string, object>
        {
            ["correct"] = ((Tensor)outputs["predictions"]).eq((Tensor)outputs["targets"]).sum(),
            ["total"] = torch.tensor(minibatch.Size),
        };
        if (cfg.Get("list_metric", false)) metrics["rows"] = minibatch.Size; // not a tensor: one list entry per shard
        return metrics;
    }

    public override IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Spec.Config cfg, Mode mode) =>
        new Dictionary<string, double>
        {
            ["accuracy"] = metrics.Columns["correct"].Cast<double?>().Sum()!.Value / metrics.Columns["total"].Cast<double?>().Sum()!.Value,
        };

    public override bool HasConverged(DataFrame valMetrics, int epoch, Spec.Config cfg) =>
        cfg.Get("converge_after", int.MaxValue) <= epoch;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> TrainSteps = new();

    private static bool NativeFault(string fail) => fail.Split(':') switch
    {
        ["backward"] => true,
        ["backward", var token, var n] => TrainSteps.AddOrUpdate(token, 1, (_, count) => count + 1) == int.Parse(n, System.Globalization.CultureInfo.InvariantCulture),
        _ => false,
    };
}

/// <summary>
/// A linearly separable 4-feature dataset written as CSV ESFs in a temporary folder; <c>nanAt</c> writes <c>NaN</c> as
/// the <c>x2</c> cell of the row of that id.
/// </summary>
public sealed class TinyData : IDisposable
{
    public TinyData(int train = 96, int validation = 32, bool withValidation = true, long? nanAt = null)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("rf-tiny-").FullName;
        var random = new Random(5);
        var id = 0;
        void Write(string file, int rows)
        {
            using var writer = new StreamWriter(Path.Combine(Directory, file));
            writer.WriteLine("id,x0,x1,x2,x3,label");
            for (var i = 0; i < rows; i++)
            {
                var x = Enumerable.Range(0, 4).Select(_ => Math.Round(random.NextDouble() * 2 - 1, 3)).ToArray();
                var label = x[0] + x[1] > 0 ? 1 : 0;
                var x2 = id == nanAt ? "NaN" : FormattableString.Invariant($"{x[2]}");
                writer.WriteLine(FormattableString.Invariant($"{id++},{x[0]},{x[1]},{x2},{x[3]},{label}"));
            }
        }
        Write("train.csv", train);
        var builder = DataHandle.Builder(Directory).Train("train.csv");
        if (withValidation)
        {
            Write("validation.csv", validation);
            builder.Validation("validation.csv");
        }
        Handle = builder.Build();
    }

    public string Directory { get; }

    public DataHandle Handle { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
