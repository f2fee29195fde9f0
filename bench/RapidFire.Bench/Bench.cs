using System.Diagnostics;
using RapidFire.Actors.Scheduling;
using RapidFire.Host;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Bench;

/// <summary>The issue-3 benchmarks on the MNIST example spec and the full shared MNIST data.</summary>
public sealed class Bench
{
    private const int BatchSize = 64;
    private const int Chunks = 4;
    private readonly string repo;
    private readonly DataHandle handle;
    private readonly int epochs;
    private readonly string specPath;
    private readonly FitOptions options;

    public Bench(string repo, string data, int epochs, FitOptions? options = null)
    {
        this.options = options ?? new FitOptions();
        this.repo = repo;
        this.epochs = epochs;
        specPath = Path.Combine(repo, "examples", "mnist", "MnistSpec.cs");
        SpecCompiler.CompileFile(specPath); // compile once, outside every timing
        handle = DataHandle.Builder(data).Train("train.csv").Validation("validation.csv").Objects(".").DownloadColumns("filepath").Build();
        TrainRows = handle.Open(Mode.Train).RowCount;
        ValidationRows = handle.Open(Mode.Validation).RowCount;
    }

    public int TrainRows { get; }

    public int ValidationRows { get; }

    public static string FindRepo()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RapidFire.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("run the benchmarks from inside the repository");
    }

    private ConfigTemplate Template(string modelType, params double[] lrs) => new()
    {
        UserKnobs = new Dictionary<string, object?> { ["model_type"] = modelType, ["hidden"] = 128 },
        Train = new TrainTemplate
        {
            Epochs = epochs,
            BatchSize = BatchSize,
            Optimizer = new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = lrs.Length == 1 ? lrs[0] : Knob.List(lrs.Cast<object?>().ToArray()) }),
        },
        NamedMetrics = ["top1_accuracy"],
    };

    /// <summary>A fit, timed; with each finished device task and when it was seen (seconds after the start).</summary>
    private async Task<(double Seconds, FitResult Result, List<(double At, TaskDone Done)> Tasks)> Fit(Experiment experiment, ConfigGroup group,
        string devices = "cpu")
    {
        var tasks = new List<(double, TaskDone)>();
        var clock = Stopwatch.StartNew();
        void Collect(ExperimentEvent e)
        {
            if (e is TaskDone done) lock (tasks) tasks.Add((clock.Elapsed.TotalSeconds, done));
        }
        experiment.Progress += Collect;
        var result = await experiment.RunFitAsync(SpecSource.FromFile(specPath), group, handle, options with { Chunks = Chunks, Devices = devices });
        var seconds = clock.Elapsed.TotalSeconds;
        experiment.Progress -= Collect;
        if (result.Runs.Any(r => r.Status != RapidFire.Actors.Runs.RunStatus.Completed))
            throw new InvalidOperationException("a benchmark run did not complete: " + string.Join("; ", result.Runs.Select(r => r.Failure)));
        return (seconds, result, tasks);
    }

    private static Experiment Open(string name, Akka.Configuration.Config? config = null) =>
        new($"{name}-{Guid.NewGuid():N}"[..Math.Min(name.Length + 9, 60)], Path.Combine(Path.GetTempPath(), "rapidfire-bench"), config);

    /// <summary>Persistence off: journal in memory, no checkpoints.</summary>
    private static readonly Akka.Configuration.Config PersistenceOff = Akka.Configuration.ConfigurationFactory.ParseString(
        "rapidfire { journal.provider = memory, save-strategy = none }");

    /// <summary>
    /// (e) The cost of persistence (SQLite journal + a checkpoint per chunk) vs none, on the README's MNIST example and
    /// on the full shared MNIST data; and the time from a resume to training again.
    /// </summary>
    public async Task Persistence(int reps)
    {
        var configs = ConfigGroup.Load(Path.Combine(repo, "examples", "mnist", "configs.json"));
        var example = DataHandle.Load(Path.Combine(repo, "examples", "mnist", "datahandle.json"));
        foreach (var (label, data) in new[] { ("the README's MNIST example (2,000 train rows)", example), ($"the full shared MNIST data ({TrainRows:N0} train rows)", handle) })
        {
            var on = new List<double>();
            var off = new List<double>();
            var epochOnly = new List<double>();
            for (var rep = -1; rep < reps; rep++) // repetition -1 warms up and is not counted
            {
                var a = await TimedFit(PersistenceOff, configs, data);
                var b = await TimedFit(null, configs, data);
                var c = await TimedFit(Akka.Configuration.ConfigurationFactory.ParseString("rapidfire.save-strategy = epoch"), configs, data);
                if (rep < 0) continue;
                off.Add(a);
                on.Add(b);
                epochOnly.Add(c);
            }
            Report($"(e) persistence cost on {label}: 4 configs x 3 epochs, SQLite journal + a checkpoint per chunk vs none",
                ("persistence off", off), ("persistence on", on));
            Console.WriteLine($"with `save-strategy = epoch` (a checkpoint per epoch): ratio {Median(epochOnly) / Median(off):0.000} " +
                              $"(runs {string.Join(", ", epochOnly.Select(x => x.ToString("0.00")))})");
            Console.WriteLine();
        }
        await ResumeToTraining(configs, example);
    }

    private async Task<double> TimedFit(Akka.Configuration.Config? config, ConfigGroup configs, DataHandle data)
    {
        using var experiment = Open("persistence", config);
        var clock = Stopwatch.StartNew();
        await experiment.RunFitAsync(SpecSource.FromFile(specPath), configs, data, options with { Chunks = Chunks, Devices = "cpu" });
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Kills a `rapidfire fit` child process mid-fit, then times <see cref="Experiment.Resume"/> until the first minibatch trains.</summary>
    private async Task ResumeToTraining(ConfigGroup configs, DataHandle data)
    {
        var dir = Path.Combine(Path.GetTempPath(), "rapidfire-bench", $"resume-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var opened = new List<double>();
        var training = new List<double>();
        for (var rep = 0; rep < 3; rep++)
        {
            var name = $"killed{rep}";
            var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { Path.Combine(AppContext.BaseDirectory, "rapidfire.dll"), "fit", "--spec", specPath,
                         "--data", Path.Combine(repo, "examples", "mnist", "datahandle.json"), "--config", Path.Combine(repo, "examples", "mnist", "configs.json"),
                         "--experiment", name, "--dir", dir })
                start.ArgumentList.Add(arg);
            using var child = Process.Start(start)!;
            var checkpoints = Path.Combine(dir, name, "checkpoints", "run-4");
            while (!(Directory.Exists(checkpoints) && Directory.GetFiles(checkpoints, "*.ckpt").Length >= 2) && !child.HasExited) await Task.Delay(5);
            child.Kill();
            await child.WaitForExitAsync();

            var clock = Stopwatch.StartNew();
            using var experiment = Experiment.Resume(name, dir);
            opened.Add(clock.Elapsed.TotalSeconds);
            var first = new TaskCompletionSource<double>();
            experiment.Progress += e => { if (e is MinibatchDone) first.TrySetResult(clock.Elapsed.TotalSeconds); };
            var fit = experiment.ResumeFitAsync();
            training.Add(await first.Task);
            await fit;
        }
        Table("(f) time from `resume` to training again (the README's example, killed after each run's second checkpoint)", "step",
            ("Experiment.Resume (journal opened, metric files rebuilt)", opened), ("... until the first minibatch has trained", training));
    }

    /// <summary>(a) One config through RapidFire vs the same work in a hand-written TorchSharp loop.</summary>
    public async Task Overhead(int reps)
    {
        var rapid = new List<double>();
        var hand = new List<double>();
        double rapidAccuracy = 0, handAccuracy = 0;
        for (var rep = -1; rep < reps; rep++) // repetition -1 warms up (JIT, libtorch, page cache) and is not counted
        {
            using (var experiment = Open("overhead"))
            {
                var (seconds, result, _) = await Fit(experiment, new GridSearch(Template("cnn", 0.001)));
                if (rep >= 0) rapid.Add(seconds);
                rapidAccuracy = result.Runs[0].ValidationHistory[^1]["top1_accuracy"];
            }
            var clock = Stopwatch.StartNew();
            handAccuracy = HandWrittenLoop(new GridSearch(Template("cnn", 0.001)).Expand()[0]);
            if (rep >= 0) hand.Add(clock.Elapsed.TotalSeconds);
        }
        Report("(a) runtime overhead: 1 CNN config, RapidFire (4 chunks, prefetching loaders) vs a hand-written loop",
            ("hand-written loop", hand), ("rapidfire fit", rapid));
        Console.WriteLine($"final validation accuracy: hand-written {handAccuracy:0.000}, rapidfire {rapidAccuracy:0.000}");
        Console.WriteLine();
    }

    /// <summary>
    /// (g) Issue 8: one run on cpu:1 vs the same run spread over cpu:2 (num_devices auto: two CPU workers, each
    /// minibatch in two shards, gradients averaged), for the CNN and the MLP of the example spec.
    /// </summary>
    public async Task Scaling(int reps)
    {
        var settings = new RapidFire.Actors.RuntimeSettings(Loaders: options.Loaders ?? 0, TorchThreads: options.TorchThreads ?? 0);
        foreach (var model in new[] { "cnn", "mlp" })
        {
            var one = new List<double>();
            var two = new List<double>();
            var accuracy = (One: 0.0, Two: 0.0);
            var busy = (One: 0.0, Two: 0.0);
            for (var rep = -1; rep < reps; rep++) // repetition -1 warms up and is not counted
            {
                foreach (var devices in new[] { "cpu:1", "cpu:2" })
                {
                    using var experiment = Open("scaling");
                    var (seconds, result, tasks) = await Fit(experiment, new GridSearch(Template(model, 0.001)), devices);
                    if (rep < 0) continue;
                    var trained = tasks.Select(t => t.Done.Task.Outcome).OfType<RapidFire.Actors.Training.GpuProtocol.Trained>().ToList();
                    var busyShare = trained.Sum(t => t.Timing.BusySeconds) / trained.Sum(t => t.Timing.BusySeconds + t.Timing.WaitSeconds);
                    if (!tasks.All(t => (t.Done.Task.Followers?.Count ?? 0) == (devices == "cpu:2" ? 1 : 0)))
                        throw new InvalidOperationException($"on {devices} a task ran on an unexpected number of devices");
                    var top1 = result.Runs[0].ValidationHistory[^1]["top1_accuracy"];
                    if (devices == "cpu:1") { one.Add(seconds); accuracy.One = top1; busy.One = busyShare; }
                    else { two.Add(seconds); accuracy.Two = top1; busy.Two = busyShare; }
                }
            }
            Report($"(g) one {model} run ({TrainRows:N0} train rows, batch {BatchSize}) on 1 vs 2 CPU devices (data parallel, num_devices auto)",
                ("cpu:1", one), ("cpu:2", two));
            Console.WriteLine($"speed-up cpu:2 over cpu:1 = {Median(one) / Median(two):0.00}x; final validation top-1: cpu:1 {accuracy.One:0.000}, " +
                              $"cpu:2 {accuracy.Two:0.000}; leading device busy (not waiting for minibatches): cpu:1 {busy.One:P0}, cpu:2 {busy.Two:P0}; " +
                              $"torch threads: cpu:1 {settings.TorchThreadsFor(1)}, cpu:2 {settings.TorchThreadsFor(2)} (process-wide), loaders {settings.LoaderCount}");
            var (rawOne, rawTwo) = RawThreads(model, 125);
            Console.WriteLine($"the ceiling without the runtime and the loaders (125 minibatches of random images, 1 torch thread each): " +
                              $"1 thread x 64 rows {rawOne:0.00} s, 2 threads x 32 rows at once {rawTwo:0.00} s: {rawOne / rawTwo:0.00}x");
            Console.WriteLine();
        }
    }

    /// <summary>
    /// The ceiling of (g) on this machine, without the runtime or the loaders: the example's <paramref name="model"/>
    /// trained on random 28x28 minibatches, 64 rows on one thread vs two threads at once on 32 rows each (the shards),
    /// the same number of minibatches; seconds of each side.
    /// </summary>
    private (double One, double Two) RawThreads(string model, int minibatches)
    {
        var spec = SpecCompiler.CompileFile(specPath).CreateInstance();
        var cfg = new GridSearch(Template(model, 0.001)).Expand()[0];
        double Train(int rows, int threads)
        {
            var clock = Stopwatch.StartNew();
            var workers = Enumerable.Range(0, threads).Select(_ => new Thread(() =>
            {
                var net = spec.CreateModel(cfg);
                var optimizer = torch.optim.Adam(net.parameters(), lr: 0.001);
                for (var i = 0; i < minibatches; i++)
                {
                    using var scope = torch.NewDisposeScope();
                    var batch = new Minibatch(new Dictionary<string, object> { ["images"] = torch.randn(rows, 1, 28, 28), ["labels"] = torch.randint(0, 10, rows) }, rows);
                    optimizer.zero_grad();
                    spec.ComputeForward(net, batch, cfg, Mode.Train).Loss!.backward();
                    optimizer.step();
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => w.Join());
            return clock.Elapsed.TotalSeconds;
        }
        torch.set_num_threads(1);
        Train(64, 1); // warm-up
        return (Train(64, 1), Train(32, 2));
    }

    /// <summary>The baseline: what a user writes without RapidFire, calling the same spec code in one thread.</summary>
    private double HandWrittenLoop(Config cfg)
    {
        torch.set_num_threads(Environment.ProcessorCount); // what a hand-written program runs with
        var spec = SpecCompiler.CompileFile(specPath).CreateInstance();
        var train = handle.Open(Mode.Train);
        var validation = handle.Open(Mode.Validation);
        torch.manual_seed(42);
        var model = spec.CreateModel(cfg);
        var optimizer = torch.optim.Adam(model.parameters(), lr: 0.001);
        double accuracy = 0;
        for (var epoch = 0; epoch < cfg.Epochs; epoch++)
        {
            var plan = EpochPlan.ForTraining(train.RowCount, cfg.BatchSize, 1, 42, epoch);
            model.train();
            foreach (var rows in plan.Chunk(0))
            {
                using var scope = torch.NewDisposeScope();
                var batch = new Minibatch(spec.CollateFn(rows.Select(r => spec.RowPrep(train[r], cfg, Mode.Train)).ToList(), cfg, Mode.Train), rows.Length);
                optimizer.zero_grad();
                var result = spec.ComputeForward(model, batch, cfg, Mode.Train);
                result.Loss!.backward();
                optimizer.step();
            }
            model.eval();
            long correct = 0;
            using (torch.no_grad())
                foreach (var rows in EpochPlan.ForEvaluation(validation.RowCount, cfg.BatchSize).Chunk(0))
                {
                    using var scope = torch.NewDisposeScope();
                    var batch = new Minibatch(spec.CollateFn(rows.Select(r => spec.RowPrep(validation[r], cfg, Mode.Validation)).ToList(), cfg, Mode.Validation), rows.Length);
                    var outputs = spec.ComputeForward(model, batch, cfg, Mode.Validation).Outputs;
                    correct += ((Tensor)outputs["predictions"]).eq((Tensor)outputs["targets"]).sum().item<long>();
                }
            accuracy = (double)correct / validation.RowCount;
        }
        return accuracy;
    }

    /// <summary>(b) 4 configs hyperparallel vs one after another; (c) the time until all 4 trained a first chunk.</summary>
    public async Task SwapAndFirstComparison(int reps)
    {
        var parallel = new List<double>();
        var sequential = new List<double>();
        var parallelFirst = new List<double>();
        var sequentialFirst = new List<double>();
        ConfigTemplate[] configs = [Template("cnn", 0.0005), Template("cnn", 0.001), Template("mlp", 0.001), Template("mlp", 0.003)];
        for (var rep = 0; rep < reps; rep++)
        {
            using (var experiment = Open("hyperparallel"))
            {
                var (seconds, _, tasks) = await Fit(experiment, new ConfigList(configs.Select(c => (ConfigGroup)new GridSearch(c)).ToArray()));
                parallel.Add(seconds);
                parallelFirst.Add(UntilEveryRunTrainedAChunk(tasks));
            }
            using (var experiment = Open("sequential"))
            {
                double total = 0, lastFirst = 0;
                foreach (var config in configs)
                {
                    var (seconds, _, tasks) = await Fit(experiment, new GridSearch(config));
                    lastFirst = total + UntilEveryRunTrainedAChunk(tasks);
                    total += seconds;
                }
                sequential.Add(total);
                sequentialFirst.Add(lastFirst);
            }
        }
        Report("(b) swap overhead: 4 configs (2 CNN, 2 MLP), hyperparallel (4 chunks/epoch, 1 device) vs one after another",
            ("one after another", sequential), ("hyperparallel", parallel));
        Report("(c) time to first comparison: until every one of the 4 configs has trained its first chunk",
            ("one after another", sequentialFirst), ("hyperparallel", parallelFirst));
    }

    /// <summary>Seconds until the last run to do so finished its first training chunk.</summary>
    private static double UntilEveryRunTrainedAChunk(List<(double At, TaskDone Done)> tasks) => tasks
        .Where(t => t.Done.Task.Task.Kind == TaskKind.Train)
        .GroupBy(t => t.Done.Task.Task.RunId)
        .Max(g => g.Min(t => t.At));

    /// <summary>(d) How long the device waited for prepared minibatches, on the CNN with PNG decoding in RowPrep.</summary>
    public async Task IdleFraction()
    {
        using var experiment = Open("idle");
        var (seconds, _, tasks) = await Fit(experiment, new GridSearch(Template("cnn", 0.0005, 0.001)));
        var busy = tasks.Sum(t => Timing(t.Done).BusySeconds);
        var wait = tasks.Sum(t => Timing(t.Done).WaitSeconds);
        Console.WriteLine("## (d) trainer idle fraction: 2 CNN configs, PNG decoding in RowPrep, 1 device");
        Console.WriteLine();
        Console.WriteLine("| fit seconds | device busy s | device waiting s | idle fraction |");
        Console.WriteLine("| --- | --- | --- | --- |");
        Console.WriteLine($"| {seconds:0.00} | {busy:0.00} | {wait:0.00} | {wait / (busy + wait):P1} |");
        Console.WriteLine();
    }

    private static RapidFire.Actors.Training.GpuProtocol.TaskTiming Timing(TaskDone done) => done.Task.Outcome switch
    {
        RapidFire.Actors.Training.GpuProtocol.Trained t => t.Timing,
        RapidFire.Actors.Training.GpuProtocol.Validated v => v.Timing,
        _ => new(0, 0, 0),
    };

    internal static void Report(string title, (string Name, List<double> Seconds) baseline, (string Name, List<double> Seconds) candidate)
    {
        Table(title, "side", baseline, candidate);
        Console.WriteLine($"ratio {candidate.Name} / {baseline.Name} = **{Median(candidate.Seconds) / Median(baseline.Seconds):0.000}**");
        Console.WriteLine();
    }

    /// <summary>A markdown table: one row per series, with its median and every measurement.</summary>
    internal static void Table(string title, string first, params (string Name, List<double> Seconds)[] rows)
    {
        Console.WriteLine($"## {title}");
        Console.WriteLine();
        Console.WriteLine($"| {first} | median s | all runs s |");
        Console.WriteLine("| --- | --- | --- |");
        foreach (var (name, seconds) in rows)
            Console.WriteLine($"| {name} | {Median(seconds):0.00} | {string.Join(", ", seconds.Select(x => x.ToString("0.00")))} |");
        Console.WriteLine();
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
