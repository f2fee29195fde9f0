using System.Diagnostics;
using RapidFire.Host;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Bench;

/// <summary>
/// Issue 14: the data-preparation CPU seconds of K hyperparallel configs against one config's (the in-situ MLP whose
/// RowPrep reads no knob), measured as the thread CPU time spent inside RowPrep.
/// </summary>
public static class PrepBench
{
    /// <summary>The in-situ example's spec, timing its RowPrep calls.</summary>
    public sealed class TimedPixelsSpec : MLSpec
    {
        private static readonly Scalar Scale = (1f / 255f).ToScalar();
        public static long Calls;
        public static long CpuTicks;

        public override object RowPrep(Row row, Config cfg, Mode mode)
        {
            var start = CpuTime();
            var pixels = torch.tensor(row.GetSingles("p0", "p783")).mul_(Scale);
            var example = new Dictionary<string, object> { ["pixels"] = pixels, ["labels"] = torch.tensor(row.GetInt64("label")) };
            Interlocked.Increment(ref Calls);
            Interlocked.Add(ref CpuTicks, CpuTime() - start);
            return example;
        }

        public override nn.Module CreateModel(Config cfg) =>
            nn.Sequential(("fc1", nn.Linear(784, cfg.Get("hidden", 256))), ("relu", nn.ReLU()), ("fc2", nn.Linear(cfg.Get("hidden", 256), 10)));

        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
        {
            var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["pixels"]);
            var outputs = new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1), ["targets"] = minibatch["labels"] };
            return (nn.functional.cross_entropy(logits, minibatch["labels"]), outputs);
        }

        /// <summary>This thread's CPU time in 100 ns ticks (getrusage would be per process; the loaders run RowPrep on their own threads).</summary>
        private static long CpuTime() => (long)(ThreadCpu.Now() * 1e7);
    }

    /// <summary>CLOCK_THREAD_CPUTIME_ID through libc.</summary>
    private static class ThreadCpu
    {
        [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
        private struct TimeSpec { public long Seconds; public long Nanoseconds; }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
        private static extern int ClockGetTime(int clock, out TimeSpec time);

        public static double Now()
        {
            ClockGetTime(3, out var t); // CLOCK_THREAD_CPUTIME_ID
            return t.Seconds + t.Nanoseconds * 1e-9;
        }
    }

    /// <summary>One config, then K configs differing in the learning rate only, each a fit of <paramref name="epochs"/> epochs.</summary>
    public static async Task Run(string handle, int k, int epochs)
    {
        foreach (var (label, lrs) in new[] { ("1 config", new object?[] { 0.001 }), ($"{k} configs", Enumerable.Range(1, k).Select(i => (object?)(0.001 * i)).ToArray()) })
        {
            TimedPixelsSpec.Calls = 0;
            TimedPixelsSpec.CpuTicks = 0;
            var group = new ConfigTemplate
            {
                UserKnobs = new Dictionary<string, object?> { ["hidden"] = 256 },
                Train = new TrainTemplate
                {
                    Epochs = epochs, BatchSize = 64,
                    Optimizer = new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = lrs.Length == 1 ? lrs[0] : Knob.List(lrs) }),
                },
                NamedMetrics = ["top1_accuracy"],
            };
            using var experiment = new Experiment($"prep{Guid.NewGuid():N}"[..14], Path.Combine(Path.GetTempPath(), "rf-prep"),
                Akka.Configuration.ConfigurationFactory.ParseString("rapidfire { journal.provider = memory, save-strategy = none }"));
            var clock = Stopwatch.StartNew();
            await experiment.RunFitAsync(SpecSource.Of<TimedPixelsSpec>(), group, DataHandle.Load(handle));
            Console.WriteLine($"{label} x {epochs} epochs: RowPrep called {TimedPixelsSpec.Calls} times, {TimedPixelsSpec.CpuTicks / 1e7:0.000} CPU s; fit {clock.Elapsed.TotalSeconds:0.00} s");
        }
    }
}
