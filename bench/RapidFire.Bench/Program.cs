// Benchmarks of issues 3, 4, 7, 8 and 9, run by hand (see docs/benchmarks.md):
//   dotnet run -c Release --project bench/RapidFire.Bench -- [overhead|swap|idle|persistence|s3|scaling|cluster|all] [--data DIR] [--epochs N] [--reps N]
//     [--loaders N] [--prefetch N] [--torch-threads N]
// Every comparison is measured side by side in one process, alternating the two sides, and reported as a ratio.
using System.Diagnostics;
using System.Globalization;
using RapidFire.Bench;
using RapidFire.Spec.Native;

TorchNative.EnsureLoaded();
// Issue 14 (see docs/benchmarks.md; bench/insitu.sh runs the whole-process pairs with hyperfine):
//   insitu-data OUT_DIR TRAIN_ROWS VALIDATION_ROWS [REPEAT] [DATA_DIR] [TEST_ROWS]   in-situ ESFs made from the PNG ESFs
//   handloop TRAIN.csv VALIDATION.csv EPOCHS [TIMES]                       the hand-written TorchSharp loop, TIMES in a row
//   handloop png DATA_DIR EPOCHS [TIMES]                                   the same for the PNG example's CNN (PNGs decoded once)
//   prep HANDLE.json K EPOCHS                                              RowPrep's CPU seconds for K configs vs 1
//   steady SPEC HANDLE CONFIG [THREADS] [persistent]                       a fit's steady epochs: device busy vs waiting
//   step TRAIN.csv CONFIG | rowprep TRAIN.csv | open TRAIN.csv | startup SPEC HANDLE CONFIG   probes of one cost each
//   pbt-policy [RUNS] [CALLS]                                              PbtPolicy.Decide's time per call over RUNS runs (issue 18)
if (args.FirstOrDefault() == "pbt-policy")
{
    // a population mid-fit: RUNS runs (8 of the grid, the rest clones) with 2 epochs of validation history, deciding point 3
    var runs = int.Parse(args.ElementAtOrDefault(1) ?? "13", CultureInfo.InvariantCulture);
    var calls = int.Parse(args.ElementAtOrDefault(2) ?? "20000", CultureInfo.InvariantCulture);
    var settings = new RapidFire.Spec.Configs.PbtSettings("top1_accuracy", RapidFire.Spec.Configs.MetricGoal.Max)
    {
        Mutations = new Dictionary<string, RapidFire.Spec.Configs.PbtMutation>
        {
            ["optimizer.args.lr"] = new(RapidFire.Spec.Configs.PbtMutationKind.Factors, [0.5, 2.0]),
            ["dropout"] = new(RapidFire.Spec.Configs.PbtMutationKind.Resample, Options: ["0.0", "0.2"]),
        },
    };
    var population = Enumerable.Range(1, runs).Select(id => new RapidFire.Actors.Runs.RunState(id, RapidFire.Spec.Config.FromJson(
        """{"model_type":"mlp","hidden":128,"dropout":0.2,"epochs":4,"batch_size":64,"optimizer":{"name":"Adam","args":{"lr":""" +
        (0.0001 * id).ToString("R", CultureInfo.InvariantCulture) + "}}}"))
    {
        Status = RapidFire.Actors.Runs.RunStatus.Ongoing, ChunksPerEpoch = 4, HasValidation = true, EpochsDone = 2,
        ValidationHistory = [new Dictionary<string, double> { ["top1_accuracy"] = 0.5 + id * 0.01 }, new Dictionary<string, double> { ["top1_accuracy"] = 0.6 + id * 0.01 }],
    }).ToList();
    var decided = new HashSet<int> { 1 };
    RapidFire.Actors.Scheduling.PbtPolicy.Decide(settings, population, decided);
    var clock = Stopwatch.StartNew();
    var exploits = 0;
    for (var i = 0; i < calls; i++) exploits += RapidFire.Actors.Scheduling.PbtPolicy.Decide(settings, population, decided).Exploits.Count;
    Console.WriteLine($"PbtPolicy.Decide over {runs} runs: {clock.Elapsed.TotalMilliseconds * 1000 / calls:0.0} µs per call ({exploits / calls} exploits each)");
    return;
}
if (args.FirstOrDefault() == "insitu-data")
{
    var pngs = args.Length > 5 ? args[5] : Path.Combine(Bench.FindRepo(), "..", "shared", "data", "mnist-10k");
    var repeat = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
    InSitu.WriteCsv(Path.Combine(pngs, "train.csv"), pngs, Path.Combine(args[1], "train.csv"), int.Parse(args[2], CultureInfo.InvariantCulture), repeat);
    InSitu.WriteCsv(Path.Combine(pngs, "validation.csv"), pngs, Path.Combine(args[1], "validation.csv"), int.Parse(args[3], CultureInfo.InvariantCulture));
    if (args.Length > 6)
        InSitu.WriteCsv(Path.Combine(pngs, "test.csv"), pngs, Path.Combine(args[1], "test.csv"), int.Parse(args[6], CultureInfo.InvariantCulture));
    return;
}
if (args.FirstOrDefault() == "handloop")
{
    for (var i = 0; i < (args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1); i++) InSitu.Run(args[1..4]);
    return;
}
if (args.FirstOrDefault() == "prep")
{
    // prep HANDLE.json K EPOCHS: data-preparation CPU seconds of K configs vs 1
    await PrepBench.Run(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture));
    return;
}
if (args.FirstOrDefault() == "open")
{
    for (var rep = 0; rep < 3; rep++)
    {
        var clock = Stopwatch.StartNew();
        var t = RapidFire.Spec.Data.DataHandle.Builder(Path.GetDirectoryName(Path.GetFullPath(args[1]))!).Train(Path.GetFileName(args[1])).Build().Open(RapidFire.Spec.Mode.Train);
        Console.WriteLine($"opened {t.RowCount} rows in {clock.Elapsed.TotalSeconds:0.000} s");
        File.SetLastWriteTimeUtc(args[1], DateTime.UtcNow); // not from the process's recent reads
    }
    return;
}
if (args.FirstOrDefault() == "step")
{
    // one training step through MinibatchTrainer vs the same step written by hand, on the same model and minibatches
    var table = RapidFire.Spec.Data.DataHandle.Builder(Path.GetDirectoryName(Path.GetFullPath(args[1]))!).Train(Path.GetFileName(args[1])).Build().Open(RapidFire.Spec.Mode.Train);
    var spec = RapidFire.Spec.Compilation.SpecCompiler.CompileFile(Path.Combine(Bench.FindRepo(), "examples", "mnist-insitu", "MnistPixelsSpec.cs")).CreateInstance();
    var cfg = RapidFire.Spec.Configs.ConfigGroup.Load(args[2]).Expand()[0];
    using var cache = new RapidFire.Actors.Data.PreparedExamples(true, 1L << 32);
    var batches = Enumerable.Range(0, table.RowCount).Chunk(64).ToList();
    var state = RapidFire.Actors.Training.RunModel.Create(spec, cfg, 42);
    var trainer = new RapidFire.Actors.Training.MinibatchTrainer(spec, cfg);
    foreach (var rows in batches) trainer.Train(state, cache.Prepare(spec, table, rows, cfg, RapidFire.Spec.Mode.Train).Batch);
    for (var rep = 0; rep < 3; rep++)
    {
        var clock = Stopwatch.StartNew();
        foreach (var rows in batches) trainer.Train(state, cache.Prepare(spec, table, rows, cfg, RapidFire.Spec.Mode.Train).Batch);
        var ours = clock.Elapsed.TotalSeconds;
        clock.Restart();
        foreach (var rows in batches)
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var batch = (IDictionary<string, object>)cache.Prepare(spec, table, rows, cfg, RapidFire.Spec.Mode.Train).Batch.Value;
            var logits = ((TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>)state.Model).forward((TorchSharp.torch.Tensor)batch["pixels"]);
            var loss = TorchSharp.torch.nn.functional.cross_entropy(logits, (TorchSharp.torch.Tensor)batch["labels"]);
            state.Optimizer.zero_grad();
            loss.backward();
            state.Optimizer.step();
        }
        var hand = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"{batches.Count} steps: MinibatchTrainer {ours * 1e3 / batches.Count:0.00} ms/step, by hand {hand * 1e3 / batches.Count:0.00} ms/step");
    }
    return;
}
if (args.FirstOrDefault() == "steady")
{
    // where a steady epoch's time goes: the device's busy and waiting seconds per task, against the wall clock
    using var experiment = new RapidFire.Host.Experiment($"st{Guid.NewGuid():N}"[..12], Path.Combine(Path.GetTempPath(), "rf-steady"),
        Akka.Configuration.ConfigurationFactory.ParseString(args.Length > 5 && args[5] == "persistent" ? "rapidfire.torch-threads = 0"
            : "rapidfire { journal.provider = memory, save-strategy = none, torch-threads = " + (args.Length > 4 ? args[4] : "0") + " }"));
    var tasks = new List<(double At, RapidFire.Actors.Training.GpuProtocol.TaskFinished Done)>();
    var clock = Stopwatch.StartNew();
    experiment.Progress += e => { if (e is RapidFire.Host.TaskDone d) lock (tasks) tasks.Add((clock.Elapsed.TotalSeconds, d.Task)); };
    await experiment.RunFitAsync(RapidFire.Host.SpecSource.FromFile(args[1]), RapidFire.Spec.Configs.ConfigGroup.Load(args[3]), RapidFire.Spec.Data.DataHandle.Load(args[2]));
    var later = tasks.SkipWhile(t => t.Done.Task.Epoch == 0).ToList();
    var timings = later.Select(t => t.Done.Outcome switch { RapidFire.Actors.Training.GpuProtocol.Trained x => x.Timing, RapidFire.Actors.Training.GpuProtocol.Validated v => v.Timing, _ => null }).OfType<RapidFire.Actors.Training.GpuProtocol.TaskTiming>().ToList();
    var wall = later[^1].At - tasks.Last(t => t.Done.Task.Epoch == 0).At;
    Console.WriteLine($"epochs 2..: wall {wall:0.000} s, device busy {timings.Sum(t => t.BusySeconds):0.000} s, waiting {timings.Sum(t => t.WaitSeconds):0.000} s, {timings.Sum(t => t.Minibatches)} minibatches in {timings.Count} tasks");
    return;
}
if (args.FirstOrDefault() == "startup")
{
    var clock = Stopwatch.StartNew();
    if (args.Length > 4)
    {
        var sys = Akka.Actor.ActorSystem.Create("warm", RapidFire.Actors.RuntimeSettings.Reference);
        Console.WriteLine($"plain actor system {clock.Elapsed.TotalSeconds:0.000} s");
        sys.Terminate().Wait();
        Console.WriteLine($"terminated {clock.Elapsed.TotalSeconds:0.000} s");
    }
    var inputs = RapidFire.Host.ExperimentInputs.Check(args[1], args[2], args[3]);
    Console.WriteLine($"inputs checked {clock.Elapsed.TotalSeconds:0.000} s");
    using (var experiment = new RapidFire.Host.Experiment($"s{Guid.NewGuid():N}"[..12], Path.Combine(Path.GetTempPath(), "rf-startup"),
               args.Length > 5 ? Akka.Configuration.ConfigurationFactory.ParseString("rapidfire.journal.provider = memory") : null))
    {
        Console.WriteLine($"experiment created {clock.Elapsed.TotalSeconds:0.000} s");
    }
    Console.WriteLine($"experiment disposed {clock.Elapsed.TotalSeconds:0.000} s");
    using (var experiment = new RapidFire.Host.Experiment($"s{Guid.NewGuid():N}"[..12], Path.Combine(Path.GetTempPath(), "rf-startup")))
        Console.WriteLine($"second experiment created {clock.Elapsed.TotalSeconds:0.000} s");
    return;
}
if (args.FirstOrDefault() == "rowprep")
{
    // RowPrep of the in-situ example over a whole ESF: per row alone, and through the prepared-example cache
    var table = RapidFire.Spec.Data.DataHandle.Builder(Path.GetDirectoryName(Path.GetFullPath(args[1]))!).Train(Path.GetFileName(args[1])).Build().Open(RapidFire.Spec.Mode.Train);
    var spec = RapidFire.Spec.Compilation.SpecCompiler.CompileFile(Path.Combine(Bench.FindRepo(), "examples", "mnist-insitu", "MnistPixelsSpec.cs")).CreateInstance();
    var cfg = new RapidFire.Spec.Config([new("hidden", 256L)]);
    for (var rep = 0; rep < 3; rep++)
    {
        var clock = Stopwatch.StartNew();
        using (var scope = TorchSharp.torch.NewDisposeScope())
            for (var r = 0; r < table.RowCount; r++) spec.RowPrep(table[r], cfg, RapidFire.Spec.Mode.Train);
        var alone = clock.Elapsed.TotalSeconds;
        clock.Restart();
        using var cache = new RapidFire.Actors.Data.PreparedExamples(true, 1L << 32);
        foreach (var rows in Enumerable.Range(0, table.RowCount).Chunk(64))
            RapidFire.Actors.Data.TensorTree.Dispose(cache.Prepare(spec, table, rows, cfg, RapidFire.Spec.Mode.Train).Batch.Value);
        var cached = clock.Elapsed.TotalSeconds;
        clock.Restart();
        foreach (var rows in Enumerable.Range(0, table.RowCount).Chunk(64))
            RapidFire.Actors.Data.TensorTree.Dispose(cache.Prepare(spec, table, rows, cfg, RapidFire.Spec.Mode.Train).Batch.Value);
        Console.WriteLine($"{table.RowCount} rows: RowPrep alone {alone * 1e6 / table.RowCount:0.0} us/row, first epoch through the cache {cached * 1e6 / table.RowCount:0.0} us/row, warm {clock.Elapsed.TotalSeconds * 1e6 / table.RowCount:0.0} us/row");
    }
    return;
}
var which = args.FirstOrDefault(a => !a.StartsWith("--")) ?? "all";
string Option(string name, string fallback) =>
    args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
var repo = Bench.FindRepo();
var data = Path.GetFullPath(Option("--data", Path.Combine(repo, "..", "shared", "data", "mnist-10k")));
var epochs = int.Parse(Option("--epochs", "2"), CultureInfo.InvariantCulture);
var reps = int.Parse(Option("--reps", "3"), CultureInfo.InvariantCulture);
int? Int(string name) => Option(name, "") is var v && v.Length > 0 ? int.Parse(v, CultureInfo.InvariantCulture) : null;
var bench = new Bench(repo, data, epochs, new RapidFire.Host.FitOptions(Loaders: Int("--loaders"), Prefetch: Int("--prefetch"), TorchThreads: Int("--torch-threads")));

Console.WriteLine($"# RapidFire.NET benchmarks ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
Console.WriteLine($"data {data} (train {bench.TrainRows}, validation {bench.ValidationRows}), {epochs} epochs, {reps} repetitions, " +
                  $"{Environment.ProcessorCount} cores, median of each side");
Console.WriteLine();
if (which is "overhead" or "all") await bench.Overhead(reps);
if (which is "swap" or "all") await bench.SwapAndFirstComparison(reps);
if (which is "idle" or "all") await bench.IdleFraction();
if (which is "persistence" or "all") await bench.Persistence(reps);
if (which is "scaling" or "all") await bench.Scaling(reps);
// starts `rapidfire worker` processes of the CLI built in src/Host/bin/Release (dotnet build src/Host -c Release)
if (which is "cluster" or "all") await new ClusterBench(repo, data, epochs).Run(reps);
if (which is "s3" or "all")
{
    // needs s3rver in .tools/ (bash scripts/test.sh installs it)
    using var s3 = new S3Bench(repo, data, epochs);
    var images = await s3.UploadAsync();
    s3.Downloads(images, reps);
    await s3.Fits(reps);
}
