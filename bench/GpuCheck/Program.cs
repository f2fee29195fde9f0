// The GPU check of issue 8 (bench/gpu-check.sh runs it, published self-contained):
//   GpuCheck [--devices cuda:0] [--cpu-only] [--epochs N] [--chunks N] [--seed S] [--tolerance T] [--dropout P] [--example DIR] [--dir DIR]
// Fits the MNIST example (examples/mnist: its 4 configs, 2,000 train rows) on --devices, then the same fit with the same
// seed on the CPU, and compares each config's final validation top-1 accuracy: PASS when every |Δ| <= T.
// Dropout is 0 unless --dropout says otherwise: dropout masks come from the device's random generator, shared by the
// runs a worker interleaves, so with dropout even two CPU layouts (cpu vs cpu:2) end up to 0.02 apart after one epoch;
// without it they agree exactly, and what is left between cuda and cpu is floating-point arithmetic.
// Exit codes: 0 PASS (or --cpu-only done), 1 FAIL (accuracies apart or a run did not complete),
// 2 CUDA not available or the fit could not start (such as a bad --devices), 64 bad arguments.
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using RapidFire.Actors.Runs;
using RapidFire.Host;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Native;
using TorchSharp;

const int Ok = 0, Fail = 1, NoCuda = 2, Usage = 64;
const string Accuracy = "top1_accuracy";

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
T Parse<T>(string name, T fallback) where T : IParsable<T> =>
    Option(name) is not { } v ? fallback
    : T.TryParse(v, CultureInfo.InvariantCulture, out var value) ? value
    : throw new FormatException($"{name} {v}: not a {typeof(T).Name}");

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine("GpuCheck [--devices cuda:0] [--cpu-only] [--epochs 2] [--chunks 4] [--seed 42] [--tolerance 0.02] [--dropout 0] [--example DIR] [--dir DIR]");
    return Ok;
}
string devices;
int epochs, chunks;
long seed;
double tolerance, dropout;
try
{
    devices = Option("--devices") ?? "cuda:0";
    epochs = Parse("--epochs", 2);
    chunks = Parse("--chunks", 4);
    seed = Parse("--seed", 42L);
    tolerance = Parse("--tolerance", 0.02);
    dropout = Parse("--dropout", 0.0);
    if (epochs < 1 || chunks < 1 || tolerance < 0 || dropout is < 0 or >= 1)
        throw new FormatException("--epochs and --chunks must be >= 1, --tolerance >= 0, --dropout in [0, 1)");
}
catch (FormatException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return Usage;
}
var cpuOnly = args.Contains("--cpu-only");
var example = Path.GetFullPath(Option("--example") ?? FindExample());
var dir = Path.GetFullPath(Option("--dir") ?? Path.Combine(Path.GetTempPath(), "rapidfire-gpu-check"));

Console.WriteLine($"# RapidFire.NET GPU check ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)");
Console.WriteLine($"program    {AppContext.BaseDirectory} (.NET {Environment.Version}, {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} cores)");
Console.WriteLine($"native     {TorchNative.EnsureLoaded()}");
var nativeDirs = new[] { AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native") };
var cudaBackend = nativeDirs.Any(d => File.Exists(Path.Combine(d, "libtorch_cuda.so")));
var cudaAvailable = torch.cuda.is_available();
Console.WriteLine($"backend    TorchSharp {typeof(torch).Assembly.GetName().Version} with {(cudaBackend ? "CUDA libtorch (libtorch_cuda.so present)" : "CPU-only libtorch (no libtorch_cuda.so)")}; " +
                  $"torch.cuda.is_available() = {cudaAvailable.ToString().ToLowerInvariant()}" +
                  (cudaAvailable ? $", {torch.cuda.device_count()} device(s)" : ""));

var wantsCuda = !cpuOnly && devices.StartsWith("cuda", StringComparison.Ordinal);
if (wantsCuda && !cudaAvailable)
{
    var why = !cudaBackend
        ? "the TorchSharp backend in this build is cpu-only (TorchSharp-cpu: no libtorch_cuda.so next to the program). " +
          "Publish it with the CUDA backend: `bench/gpu-check.sh prepare` (TORCH_BACKEND=TorchSharp-cuda-linux, the default), " +
          "where a package feed serves TorchSharp-cuda-linux"
        : !NativeLibrary.TryLoad("libcuda.so.1", out _)
            ? "the backend is CUDA, but there is no CUDA driver on this machine (libcuda.so.1 cannot be loaded; is this a GPU machine, is the NVIDIA driver installed?)"
            : "the backend is CUDA and the driver loads, but libtorch sees no usable GPU (check `nvidia-smi`, CUDA_VISIBLE_DEVICES, and that the driver supports the CUDA 12 runtime of the package)";
    Console.Error.WriteLine($"CUDA is not available for --devices {devices}: {why}.");
    Console.Error.WriteLine("Run with --cpu-only to check the CPU fit alone.");
    return NoCuda;
}

var configs = ConfigGroup.FromJson(Overridden(File.ReadAllText(Path.Combine(example, "configs.json")), epochs, dropout), Path.Combine(example, "configs.json"));
var data = DataHandle.Load(Path.Combine(example, "datahandle.json"));
var specPath = Path.Combine(example, "MnistSpec.cs");
var trainRows = data.Open(Mode.Train).RowCount;
var validationRows = data.Open(Mode.Validation).RowCount;
var clock = Stopwatch.StartNew();
SpecCompiler.CompileFile(specPath); // Roslyn at run time; compiled once, outside every timing
Console.WriteLine($"spec       {specPath} compiled in {clock.Elapsed.TotalSeconds:0.0} s");
Console.WriteLine($"data       {example} (train {trainRows}, validation {validationRows}); {configs.Expand().Count} configs x {epochs} epoch(s), " +
                  $"{chunks} chunks per epoch, seed {seed}, dropout {dropout}");
Console.WriteLine($"experiments in {dir}");
Console.WriteLine();

var fits = new List<(string Devices, Fit Fit)>();
try
{
    if (!cpuOnly)
    {
        if (wantsCuda) WarmUp(devices);
        fits.Add((devices, await RunFit(devices)));
    }
    fits.Add(("cpu", await RunFit("cpu")));
}
catch (Exception e) when (e is RapidFireException or InvalidOperationException or ArgumentException)
{
    var problems = e is RapidFireException r ? r.Problems : [e.Message];
    foreach (var problem in problems) Console.Error.WriteLine($"error: the fit could not start: {problem}");
    return NoCuda;
}
foreach (var (device, fit) in fits) Print(device, fit);

if (fits.Any(f => f.Fit.Result.Runs.Any(r => r.Status != RunStatus.Completed)))
{
    Console.WriteLine("FAIL: a run did not complete (see above)");
    return Fail;
}
if (fits.Count == 1)
{
    Console.WriteLine("--cpu-only: no comparison made");
    return Ok;
}
return Compare(fits[0], fits[1]);

string FindExample()
{
    var beside = Path.Combine(AppContext.BaseDirectory, "examples", "mnist");
    if (File.Exists(Path.Combine(beside, "configs.json"))) return beside;
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "RapidFire.sln"))) return Path.Combine(d.FullName, "examples", "mnist");
    throw new DirectoryNotFoundException($"no examples/mnist beside {AppContext.BaseDirectory} or in a repository above it: pass --example DIR");
}

// The example's config group with this check's epochs and dropout.
static string Overridden(string json, int epochs, double dropout)
{
    var group = JsonNode.Parse(json)!.AsObject();
    group["train"]!["epochs"] = epochs;
    group["user_knobs"]!["dropout"] = dropout;
    return group.ToJsonString();
}

// Creates the CUDA context (and loads the kernels' libraries) before the clock starts.
static void WarmUp(string devices)
{
    var clock = Stopwatch.StartNew();
    var indices = devices.Contains(':') ? devices[(devices.IndexOf(':') + 1)..].Split(',') : ["0"];
    foreach (var index in indices)
    {
        using var x = torch.ones(64, 64, device: torch.device($"cuda:{index.Trim()}"));
        using var y = x.matmul(x);
        _ = y.sum().item<float>();
    }
    Console.WriteLine($"CUDA warm-up on {devices}: {clock.Elapsed.TotalSeconds:0.0} s (not counted)");
}

async Task<Fit> RunFit(string fitDevices)
{
    var name = $"gpu-check-{new string(fitDevices.Where(char.IsLetterOrDigit).ToArray())}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}";
    using var experiment = new Experiment(name, dir);
    Console.WriteLine($"fit on {fitDevices} ({experiment.Path}) ...");
    var watch = Stopwatch.StartNew();
    var result = await experiment.RunFitAsync(SpecSource.FromFile(specPath), configs, data,
        new FitOptions(Chunks: chunks, Devices: fitDevices, Seed: seed));
    var seconds = watch.Elapsed.TotalSeconds;
    experiment.End();
    return new Fit(result, seconds, result.Runs.Sum(r => (long)r.EpochsDone * trainRows));
}

void Print(string fitDevices, Fit fit)
{
    Console.WriteLine();
    Console.WriteLine($"## {fitDevices}: {fit.Seconds:0.00} s wall, {fit.TrainExamples:N0} training examples " +
                      $"({trainRows} rows x epochs done, all runs) = {fit.ExamplesPerSecond:N0} examples/s");
    var varying = VaryingKnobs(fit.Result.Runs.Select(r => r.Config).ToList());
    foreach (var run in fit.Result.Runs)
    {
        var last = run.ValidationHistory.Count > 0 ? run.ValidationHistory[^1] : new Dictionary<string, double>();
        Console.WriteLine($"run {run.RunId} [{string.Join(" ", varying.Select(k => $"{k}={Knob(run.Config, k)}"))}] {run.Status} " +
                          $"after {run.EpochsDone} epoch(s): val " +
                          string.Join(", ", last.Select(kv => $"{kv.Key} {kv.Value.ToString("0.0000", CultureInfo.InvariantCulture)}")) +
                          (run.Failure is null ? "" : $"; failure: {run.Failure}"));
    }
}

int Compare((string Devices, Fit Fit) device, (string Devices, Fit Fit) cpu)
{
    Console.WriteLine();
    Console.WriteLine($"## {device.Devices} vs cpu: final validation {Accuracy}, tolerance |Δ| <= {tolerance}");
    var pass = true;
    foreach (var run in device.Fit.Result.Runs)
    {
        var twin = cpu.Fit.Result.Runs.Single(r => r.RunId == run.RunId);
        var a = Final(run);
        var b = Final(twin);
        var delta = Math.Abs(a - b);
        var ok = delta <= tolerance;
        pass &= ok;
        Console.WriteLine($"run {run.RunId}: {device.Devices} {a:0.0000}  cpu {b:0.0000}  |Δ| {delta:0.0000}  {(ok ? "ok" : "APART")}");
    }
    Console.WriteLine($"throughput: {device.Devices} {device.Fit.ExamplesPerSecond:N0} examples/s, cpu {cpu.Fit.ExamplesPerSecond:N0} examples/s " +
                      $"(x{device.Fit.ExamplesPerSecond / cpu.Fit.ExamplesPerSecond:0.00})");
    Console.WriteLine(pass ? "PASS" : "FAIL: the same config's final validation accuracy differs between the devices by more than the tolerance");
    return pass ? Ok : Fail;

    static double Final(RunState run) =>
        run.ValidationHistory.Count > 0 && run.ValidationHistory[^1].TryGetValue(Accuracy, out var v) ? v : double.NaN;
}

static IReadOnlyList<string> VaryingKnobs(IReadOnlyList<Config> configs) =>
    configs.SelectMany(c => c.Leaves()).GroupBy(kv => kv.Key)
        .Where(g => g.Select(kv => ConfigValue.ToJson(kv.Value)).Distinct().Count() > 1)
        .Select(g => g.Key).ToList();

static string Knob(Config cfg, string key) =>
    ConfigValue.ToJson(cfg.Leaves().First(kv => kv.Key == key).Value).Trim('"');

/// <summary>A timed fit: its result, its wall seconds and the training examples it processed (train rows x epochs done, all runs).</summary>
internal sealed record Fit(FitResult Result, double Seconds, long TrainExamples)
{
    public double ExamplesPerSecond => TrainExamples / Seconds;
}
