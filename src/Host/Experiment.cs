using Akka.Actor;
using RapidFire.Actors;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Native;
using TorchSharp;
using static RapidFire.Actors.Experiment.ExperimentProtocol;

namespace RapidFire.Host;

/// <summary>Per-fit overrides of the runtime settings (null: the experiment's defaults).</summary>
/// <param name="Chunks">Chunks per epoch.</param>
/// <param name="Devices"><c>cpu</c>, <c>cpu:N</c>, <c>cuda</c> or <c>cuda:I,J</c>.</param>
/// <param name="Seed">The seed of runs without a <c>seed</c> knob.</param>
/// <param name="Prefetch">Minibatches prepared ahead of each device.</param>
/// <param name="Loaders">DataLoaderActors (0: one per core).</param>
/// <param name="TorchThreads">libtorch intra-op threads (0: the cores shared among the CPU devices).</param>
public sealed record FitOptions(int? Chunks = null, string? Devices = null, long? Seed = null, int? Prefetch = null, int? Loaders = null,
    int? TorchThreads = null)
{
    internal RuntimeSettings Over(RuntimeSettings defaults) => (defaults with
    {
        Chunks = Chunks ?? defaults.Chunks,
        Devices = Devices ?? defaults.Devices,
        Seed = Seed ?? defaults.Seed,
        Prefetch = Prefetch ?? defaults.Prefetch,
        Loaders = Loaders ?? defaults.Loaders,
        TorchThreads = TorchThreads ?? defaults.TorchThreads,
    }).Validated();
}

/// <summary>What a fit ended with: every run's final state, in run order.</summary>
/// <param name="Runs">The runs of this fit.</param>
/// <param name="Cancelled">Whether the fit was cancelled before every run ended on its own.</param>
public sealed record FitResult(IReadOnlyList<RunState> Runs, bool Cancelled);

/// <summary>Something that happened in an experiment, as <see cref="Experiment.Progress"/> reports it.</summary>
public abstract record ExperimentEvent;

/// <summary>A run's state changed (started, trained a chunk, closed an epoch, ended).</summary>
public sealed record RunChanged(RunState Run) : ExperimentEvent;

/// <summary>A minibatch was processed: its loss and metrics.</summary>
public sealed record MinibatchDone(MinibatchRecord Minibatch) : ExperimentEvent;

/// <summary>An epoch's metrics of one partition were closed.</summary>
public sealed record EpochDone(MetricsProtocol.EpochRecorded Epoch) : ExperimentEvent;

/// <summary>A device finished a task (with its timing: busy and waiting seconds).</summary>
public sealed record TaskDone(GpuProtocol.TaskFinished Task) : ExperimentEvent;

/// <summary>
/// An experiment: a named folder under an experiments directory, and the embedded actor runtime that trains its
/// fits. One experiment is active per process; <see cref="End"/> closes it.
/// </summary>
/// <example>
/// <code>
/// using var experiment = new Experiment("mnist", "experiments");
/// var result = await experiment.RunFitAsync(SpecSource.FromFile("MnistSpec.cs"),
///     ConfigGroup.Load("configs.json"), DataHandle.Load("datahandle.json"));
/// </code>
/// </example>
public sealed class Experiment : IDisposable
{
    private static readonly object ActiveLock = new();
    private static Experiment? active;

    private readonly ActorSystem system;
    private readonly RuntimeSettings defaults;
    private readonly ExperimentFiles files;
    private readonly SemaphoreSlim oneOperation = new(1, 1);
    private readonly IActorRef bridge;
    private IActorRef? current;
    private int nextRunId = 1;
    private int fits;
    private bool ended;

    /// <summary>
    /// Opens a new experiment. Its name is unique within <paramref name="directory"/>: when
    /// <c>directory/name</c> exists already, <c>name_2</c>, <c>name_3</c>... is used (see <see cref="Name"/>).
    /// </summary>
    /// <param name="name">The experiment's name (letters, digits, '-', '_', '.').</param>
    /// <param name="directory">The experiments directory; created when missing.</param>
    /// <param name="config">HOCON overriding the runtime defaults (the <c>rapidfire</c> section, Akka settings).</param>
    public Experiment(string name, string directory = "rapidfire-experiments", Akka.Configuration.Config? config = null)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')))
            throw new ArgumentException($"experiment name '{name}' must be letters, digits, '-', '_' or '.'", nameof(name));
        TorchNative.EnsureLoaded();
        lock (ActiveLock)
        {
            if (active is not null)
                throw new InvalidOperationException($"experiment '{active.Name}' is active in this process; End() it before opening '{name}'");
            Directory.CreateDirectory(directory);
            Name = UniqueName(directory, name);
            Path = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, Name));
            Directory.CreateDirectory(Path);
            defaults = RuntimeSettings.From(config ?? Akka.Configuration.Config.Empty);
            system = ActorSystem.Create("rapidfire", config is null ? RuntimeSettings.Reference : config.WithFallback(RuntimeSettings.Reference));
            files = new ExperimentFiles(Path);
            bridge = system.ActorOf(Props.Create(() => new EventBridge(this)), "events");
            foreach (var type in new[] { typeof(RunUpdated), typeof(MinibatchRecord), typeof(MetricsProtocol.EpochRecorded), typeof(GpuProtocol.TaskFinished) })
                system.EventStream.Subscribe(bridge, type);
            active = this;
        }
    }

    /// <summary>The experiment's name (suffixed when the requested one was taken).</summary>
    public string Name { get; }

    /// <summary>The experiment's folder: <c>runs.csv</c> and <c>metrics/</c> are written there.</summary>
    public string Path { get; }

    /// <summary>
    /// Raised for every run change, minibatch, closed epoch and finished device task, on a runtime thread: keep
    /// handlers short.
    /// </summary>
    public event Action<ExperimentEvent>? Progress;

    /// <summary>Trains every config of <paramref name="configs"/> concurrently (see the README); returns when every run has ended.</summary>
    /// <param name="spec">The MLSpec: a <c>.cs</c> file or a compiled class.</param>
    /// <param name="configs">The config group; it is expanded (and rejected with every fault) before anything runs.</param>
    /// <param name="data">The data handle; it needs a train partition, and validates every epoch when it has a validation one.</param>
    /// <param name="options">Overrides of the runtime settings for this fit.</param>
    /// <param name="cancellation">Cancels the fit: tasks in flight are abandoned and unfinished runs stopped.</param>
    public async Task<FitResult> RunFitAsync(SpecSource spec, ConfigGroup configs, DataHandle data, FitOptions? options = null,
        CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        var settings = (options ?? new FitOptions()).Over(defaults);
        var runs = configs.Expand();
        var factory = spec.Factory();
        var devices = DeviceSpec.Parse(settings.Devices, () => torch.cuda.is_available() ? torch.cuda.device_count() : 0);
        if (!await oneOperation.WaitAsync(0, cancellation))
            throw new InvalidOperationException($"experiment '{Name}' is already running an operation; cancel it or wait");
        try
        {
            // libtorch's intra-op threads are process-wide: the loaders and the CPU workers share the cores.
            torch.set_num_threads(settings.TorchThreadsFor(devices.Count(d => !d.IsCuda)));
            using var services = new TrainingServices(factory, data, settings);
            var definitions = runs.Select((cfg, i) => new RunDefinition(nextRunId + i, cfg)).ToList();
            nextRunId += definitions.Count;
            var experiment = system.ActorOf(ExperimentActor.Props(services, devices), $"fit-{++fits}");
            current = experiment;
            await using var _ = cancellation.Register(() => experiment.Tell(new CancelFit()));
            try
            {
                var completed = await experiment.Ask<FitCompleted>(new StartFit(definitions), Timeout.InfiniteTimeSpan);
                // Every event of the fit was published before its end: once the bridge answers, all were handled.
                await bridge.Ask<EventBridge.Flushed>(new EventBridge.Flush(), TimeSpan.FromSeconds(30));
                files.WriteRuns(completed.Runs);
                return new FitResult(completed.Runs, completed.Cancelled);
            }
            finally
            {
                current = null;
                await experiment.GracefulStop(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            oneOperation.Release();
        }
    }

    /// <summary>The synchronous form of <see cref="RunFitAsync"/>.</summary>
    public FitResult RunFit(SpecSource spec, ConfigGroup configs, DataHandle data, FitOptions? options = null) =>
        RunFitAsync(spec, configs, data, options).GetAwaiter().GetResult();

    /// <summary>Cancels the current operation, if any; its task returns with <see cref="FitResult.Cancelled"/>.</summary>
    public void Cancel() => current?.Tell(new CancelFit());

    /// <summary>Closes the experiment: the runtime stops and another experiment may be opened in this process.</summary>
    public void End()
    {
        if (ended) return;
        ended = true;
        Cancel();
        system.Terminate().Wait(TimeSpan.FromSeconds(30));
        lock (ActiveLock)
            if (active == this) active = null;
    }

    /// <inheritdoc />
    public void Dispose() => End();

    private void Publish(ExperimentEvent e)
    {
        files.Record(e);
        Progress?.Invoke(e);
    }

    private static string UniqueName(string directory, string name)
    {
        var candidate = name;
        for (var i = 2; Directory.Exists(System.IO.Path.Combine(directory, candidate)); i++) candidate = $"{name}_{i}";
        return candidate;
    }

    /// <summary>Forwards the runtime's events to <see cref="Progress"/> and the experiment's files.</summary>
    private sealed class EventBridge : ReceiveActor
    {
        public sealed record Flush;

        public sealed record Flushed;

        public EventBridge(Experiment experiment)
        {
            Receive<Flush>(_ => Sender.Tell(new Flushed()));
            Receive<RunUpdated>(e => experiment.Publish(new RunChanged(e.State)));
            Receive<MinibatchRecord>(e => experiment.Publish(new MinibatchDone(e)));
            Receive<MetricsProtocol.EpochRecorded>(e => experiment.Publish(new EpochDone(e)));
            Receive<GpuProtocol.TaskFinished>(e => experiment.Publish(new TaskDone(e)));
        }
    }
}

/// <summary>Where an experiment's MLSpec comes from: a <c>.cs</c> file compiled at run time, or a compiled class.</summary>
public abstract record SpecSource
{
    /// <summary>The spec class in a <c>.cs</c> file (compiled with Roslyn; see <see cref="SpecCompiler"/>).</summary>
    public static SpecSource FromFile(string path) => new FileSpec(System.IO.Path.GetFullPath(path));

    /// <summary>A compiled spec class with a public parameterless constructor.</summary>
    public static SpecSource Of<TSpec>() where TSpec : MLSpec, new() => new TypeSpec(typeof(TSpec));

    internal abstract Func<MLSpec> Factory();

    private sealed record FileSpec(string Path) : SpecSource
    {
        internal override Func<MLSpec> Factory() => SpecCompiler.CompileFile(Path).CreateInstance;
    }

    private sealed record TypeSpec(Type Type) : SpecSource
    {
        internal override Func<MLSpec> Factory() => () => (MLSpec)Activator.CreateInstance(Type)!;
    }
}
