using Akka.Actor;
using RapidFire.Actors;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Data;
using RapidFire.Host.Api;
using RapidFire.Actors.Persistence;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Native;
using TorchSharp;
using static RapidFire.Actors.Experiment.ExperimentProtocol;

namespace RapidFire.Host;

/// <summary>
/// An experiment: a named folder under an experiments directory holding its journal, checkpoints, metric files and
/// log, and the embedded actor runtime that trains its fits. Names are unique in their directory; one experiment is
/// active per directory (across processes) and per process. <see cref="End"/> closes it; after a crash,
/// <see cref="Resume"/> opens it again and <see cref="ResumeFitAsync"/> finishes the interrupted fit.
/// </summary>
/// <example>
/// <code>
/// using var experiment = new Experiment("mnist", "experiments");
/// var result = await experiment.RunFitAsync(SpecSource.FromFile("MnistSpec.cs"),
///     ConfigGroup.Load("configs.json"), DataHandle.Load("datahandle.json"));
/// </code>
/// </example>
public sealed class Experiment : IDisposable, IExperimentControl
{
    /// <summary>The experiments directory used when none is given.</summary>
    public const string DefaultDirectory = "rapidfire-experiments";

    private static readonly object ActiveLock = new();
    private static Experiment? active;

    private readonly ActorSystem system;
    private readonly RuntimeSettings defaults;
    private readonly ExperimentFiles files;
    private readonly IActorRef experiment;
    private readonly IActorRef bridge;
    private readonly FileStream directoryLock;
    private readonly ExperimentStorage storage;
    private readonly ExperimentJournal journal;
    private readonly TaskCompletionSource<string> journalFailure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool ended;
    private readonly Dictionary<int, RunState> lastRuns = [];

    /// <summary>
    /// Creates a new experiment in <paramref name="directory"/>. A name that exists there is refused (the message
    /// says how to resume it), as is a directory in which another experiment is active.
    /// </summary>
    /// <param name="name">The experiment's name (letters, digits, '-', '_', '.').</param>
    /// <param name="directory">The experiments directory; created when missing.</param>
    /// <param name="config">HOCON overriding the runtime defaults: the <c>rapidfire</c> section (journal, checkpoints, s3...), Akka settings.</param>
    public Experiment(string name, string directory = DefaultDirectory, Akka.Configuration.Config? config = null)
        : this(name, directory, config, resuming: false) { }

    private Experiment(string name, string directory, Akka.Configuration.Config? config, bool resuming, bool rebuilding = false)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')))
            throw new ArgumentException($"experiment name '{name}' must be letters, digits, '-', '_' or '.'", nameof(name));
        TorchNative.EnsureLoaded();
        ReserveThreadPool();
        Name = name;
        Directory.CreateDirectory(directory);
        Path = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, name));
        lock (ActiveLock)
        {
            if (active is not null)
                throw new InvalidOperationException($"experiment '{active.Name}' is active in this process; End() it before opening '{name}'");
            directoryLock = DirectoryLock.Take(directory, name);
            try
            {
                var exists = Directory.Exists(Path);
                if (!resuming && exists)
                    throw new InvalidOperationException(
                        $"experiment '{name}' exists in {System.IO.Path.GetFullPath(directory)}: resume it with " +
                        $"`rapidfire resume --experiment {name} --dir {directory}` (Experiment.Resume(\"{name}\", ...)), or choose another name");
                if (resuming && !exists)
                    throw new InvalidOperationException($"there is no experiment '{name}' in {System.IO.Path.GetFullPath(directory)} to resume");
                Directory.CreateDirectory(Path);
                var user = config ?? Akka.Configuration.Config.Empty;
                defaults = RuntimeSettings.From(user);
                // A journal that cannot be read is left untouched: opening it for writing would start a new, empty one.
                journal = new ExperimentJournal(user, Path);
                if (resuming && !rebuilding && journal.File is { } file && JournalConfig.SqliteProblem(file) is { } problem)
                    throw new InvalidOperationException($"experiment '{name}' cannot be opened: its journal {file} {problem}; nothing was changed");
                var hocon = user.WithFallback(journal.Hocon()).WithFallback(RuntimeSettings.Reference);
                system = ActorSystem.Create("rapidfire", hocon);
                ClusterAddress = JoinCluster(system);
                files = new ExperimentFiles(Path, Export.ParquetTables.IsEnabled(user));
                bridge = system.ActorOf(Props.Create(() => new EventBridge(this)), "events");
                foreach (var type in new[] { typeof(RapidFire.Spec.Progress.ProgressUpdate), typeof(RunUpdated), typeof(RunJournaled), typeof(MinibatchRecord), typeof(MetricsProtocol.EpochRecorded), typeof(GpuProtocol.TaskFinished), typeof(RunWarning), typeof(ExperimentProtocol.JournalUnavailable), typeof(ControlRecord), typeof(RunPruned), typeof(FitProtocol.WorkerChanged), typeof(DataLoaderProtocol.PrepCacheNoted), typeof(ExperimentProtocol.FitDefined) })
                    system.EventStream.Subscribe(bridge, type);
                storage = ExperimentStorage.Open(user, Path, name, new EventStreamProgress(system.EventStream));
                experiment = system.ActorOf(ExperimentActor.Props(name, _ => storage.ForFit(), CudaDevices), "experiment");
                AwaitJournal();
                files.Log(resuming ? $"experiment {name} reopened to resume" : $"experiment {name} created");
                if (storage.Checkpoints is S3CheckpointStore) files.Log($"checkpoints in {storage.Describe()}");
                if (resuming && storage.Checkpoints is LocalCheckpointStore local && local.RemoveInterruptedWrites() is > 0 and var removed)
                    files.Log($"checkpoints: removed {removed} temporary file{(removed == 1 ? "" : "s")} of writes a crash interrupted");
                active = this;
            }
            catch
            {
                directoryLock.Dispose();
                storage?.Dispose();
                system?.Terminate().Wait(TimeSpan.FromSeconds(10));
                throw;
            }
        }
    }

    /// <summary>
    /// Opens an existing experiment to look at it (its runs as journaled, their metrics, the IC log), for instance to
    /// serve its dashboard after the fit; <see cref="ResumeFitAsync"/> continues an interrupted fit from here too.
    /// </summary>
    public static Experiment Open(string name, string directory = DefaultDirectory, Akka.Configuration.Config? config = null) =>
        Resume(name, directory, config);

    /// <summary>
    /// Opens an existing experiment to continue it after a crash (then call <see cref="ResumeFitAsync"/>). Its metric
    /// files are rebuilt from the journal first.
    /// </summary>
    public static Experiment Resume(string name, string directory = DefaultDirectory, Akka.Configuration.Config? config = null)
    {
        var opened = new Experiment(name, directory, config, resuming: true);
        try
        {
            opened.RebuildFilesAsync().GetAwaiter().GetResult();
            return opened;
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens an experiment whose journal is lost or cannot be read, to rebuild its fit from what is outside the journal
    /// (then call <see cref="ResumeFitAsync"/>): the fit's manifest (<c>fit.json</c>) and each run's newest valid
    /// checkpoint, whose header holds the run's state then. The unreadable journal and the old metric files are kept
    /// beside, renamed; a new journal is started. <see cref="Recovery"/> says what was recovered and what was lost.
    /// Refused when the journal can be read (resume it as it is), or when the journal is not a SQLite file.
    /// </summary>
    public static Experiment RecoverFromCheckpoints(string name, string directory = DefaultDirectory, Akka.Configuration.Config? config = null)
    {
        var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, name));
        if (!Directory.Exists(path)) throw new InvalidOperationException($"there is no experiment '{name}' in {System.IO.Path.GetFullPath(directory)} to recover");
        var user = config ?? Akka.Configuration.Config.Empty;
        if (!ExperimentJournal.IsSqlite(user))
            throw new InvalidOperationException($"experiment '{name}': a recovery from checkpoints rebuilds a SQLite journal; this one journals to {user.GetString("rapidfire.journal.provider")}");
        var journal = System.IO.Path.Combine(path, "journal.db");
        if (JournalConfig.SqliteProblem(journal) is null)
            throw new InvalidOperationException($"experiment '{name}': its journal {journal} can be read: resume it without --from-checkpoints");
        var manifestFile = System.IO.Path.Combine(path, "fit.json");
        if (!File.Exists(manifestFile))
            throw new InvalidOperationException($"experiment '{name}' cannot be recovered from its checkpoints: {manifestFile}, the fit's manifest, is missing (experiments started before it was written have none)");
        var manifest = JournalSerializer.FromJson<ExperimentProtocol.FitManifest>(File.ReadAllText(manifestFile));

        var kept = CheckpointRecovery.SetAside(path, journal);
        var opened = new Experiment(name, directory, config, resuming: true, rebuilding: true);
        try
        {
            opened.Recovery = CheckpointRecovery.Plan(manifest, kept, opened.Checkpoints);
            foreach (var line in opened.Recovery.Report) opened.files.Log($"recovery: {line}");
            return opened;
        }
        catch
        {
            opened.Dispose();
            throw;
        }
    }

    /// <summary>A fit rebuilt from its checkpoints, waiting for <see cref="ResumeFitAsync"/>: its manifest, each run's state, and what was recovered and lost.</summary>
    public sealed record RecoveryPlan(ExperimentProtocol.FitManifest Manifest, IReadOnlyDictionary<int, RunState> States, IReadOnlyList<string> Report);

    /// <summary>The recovery <see cref="RecoverFromCheckpoints"/> prepared, until the resume carries it out; null otherwise.</summary>
    public RecoveryPlan? Recovery { get; private set; }

    /// <summary>The experiment's name.</summary>
    public string Name { get; }

    /// <summary>The experiment's folder: <c>journal.db</c>, <c>checkpoints/</c>, <c>runs.csv</c>, <c>metrics/</c>, <c>experiment.log</c>.</summary>
    public string Path { get; }

    /// <summary>
    /// Where the experiment reads data handles' files: local paths, and <c>s3://</c> locators through the download cache
    /// (<c>rapidfire.s3</c> settings). Pass it to <see cref="DataHandle.Open"/> to read a partition as the runtime does.
    /// </summary>
    public IDataStorage DataStorage => storage.Data;

    /// <summary>Where the experiment's checkpoints are: its <c>checkpoints/</c> folder, or an S3 store (<c>rapidfire.checkpoints.location</c>).</summary>
    public ICheckpointStore Checkpoints => storage.Checkpoints;

    /// <summary>Uploads files of the experiment folder to the artifacts location (<c>rapidfire.artifacts.location</c>), if one is set.</summary>
    internal Task<IReadOnlyList<string>> UploadArtifactsAsync(IEnumerable<string> files, CancellationToken cancellation) =>
        storage.UploadArtifactsAsync(Path, files, cancellation);

    /// <summary>
    /// The experiment's files (runs.csv, metrics, experiment.log...) whose last write failed for want of disk space, with
    /// the error; each is rewritten whole at its next write.
    /// </summary>
    public IReadOnlyDictionary<string, string> UnwrittenFiles => files.Unwritten;

    /// <summary>Appends a line to the experiment's log (<c>experiment.log</c>), with the time: for hosts and exporters reporting on it.</summary>
    public void Log(string line) => files.Log(line);

    /// <summary>
    /// Raised for every run change, minibatch, closed epoch, finished device task and warning, on a runtime thread:
    /// keep handlers short.
    /// </summary>
    public event Action<ExperimentEvent>? Progress;

    /// <summary>Trains every config of <paramref name="configs"/> concurrently (see the README); returns when every run has ended.</summary>
    /// <param name="spec">The MLSpec: a <c>.cs</c> file (the experiment keeps a copy) or a compiled class.</param>
    /// <param name="configs">The config group; it is expanded (and rejected with every fault) before anything runs.</param>
    /// <param name="data">The data handle; it needs a train partition, and validates every epoch when it has a validation one.</param>
    /// <param name="options">Overrides of the runtime settings for this fit.</param>
    /// <param name="cancellation">Cancels the fit: tasks in flight are abandoned and unfinished runs stopped.</param>
    public Task<FitResult> RunFitAsync(SpecSource spec, ConfigGroup configs, DataHandle data, FitOptions? options = null,
        CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        var settings = (options ?? new FitOptions()).Over(defaults);
        var runs = configs.Expand();
        if (ClusterAddress is null && DeviceProblems(runs, settings.Devices) is { Count: > 0 } problems)
            throw new ConfigException(problems.Select(p => new ConfigError("", p)).ToList());
        return StartFit(spec, configs, runs, data, settings, cancellation);
    }

    /// <summary>
    /// The fit of inputs the CLI has loaded and checked already (<see cref="ExperimentInputs"/>, <see cref="DeviceProblems"/>):
    /// the group is not read or expanded again.
    /// </summary>
    internal Task<FitResult> RunCheckedFitAsync(SpecSource spec, ExperimentInputs inputs, FitOptions? options, CancellationToken cancellation)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        if (inputs.Problems.Count > 0 || inputs.Group is null || inputs.Data is null)
            throw new ArgumentException("the inputs have problems: " + string.Join("; ", inputs.Problems), nameof(inputs));
        return StartFit(spec, inputs.Group, inputs.Runs, inputs.Data, (options ?? new FitOptions()).Over(defaults), cancellation);
    }

    private Task<FitResult> StartFit(SpecSource spec, ConfigGroup configs, IReadOnlyList<Config> runs, DataHandle data, RuntimeSettings settings,
        CancellationToken cancellation)
    {
        var start = new ExperimentProtocol.StartFit(spec.Reference(Path), data.ToJson(Path), Path, settings, runs, configs.Pruning);
        files.Log($"fit of {runs.Count} runs started ({start.Spec.Name}, devices {settings.Devices}, {settings.Chunks} chunks per epoch" +
                  (configs.Pruning is { } rule ? $", pruning by {rule.Name} on {rule.Metric}" : "") + ")");
        return Operate(start, settings, cancellation);
    }

    /// <summary>
    /// What is wrong with the configs' <c>num_devices</c> knobs on <paramref name="devices"/> (<c>--devices</c>), each
    /// naming the config (1-based, in expansion order); empty when nothing is. A bad <paramref name="devices"/> is a
    /// <see cref="ConfigException"/>.
    /// </summary>
    public static IReadOnlyList<string> DeviceProblems(IReadOnlyList<Config> configs, string devices)
    {
        var count = DeviceSpec.Parse(devices, CudaDevices).Count;
        return configs.Select((cfg, i) => Actors.Scheduling.DataParallel.Problem($"config {i + 1}", cfg, count)).OfType<string>().ToList();
    }

    /// <summary>
    /// This experiment's node address on an Akka cluster (<c>akka.tcp://rapidfire@HOST:PORT</c>: what workers give as
    /// <c>--seed-nodes</c>), or null when the experiment runs embedded, on no cluster.
    /// </summary>
    public string? ClusterAddress { get; }

    /// <summary>
    /// On a cluster (<c>akka.actor.provider = cluster</c>), joins it: through the configured seed nodes, or, with none,
    /// as the first node (the cluster forms around this one). Returns this node's address; null off a cluster.
    /// </summary>
    private static string? JoinCluster(ActorSystem system)
    {
        if (!Actors.Cluster.WorkerProtocol.IsClusterNode(system)) return null;
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (cluster.Settings.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
        return cluster.SelfAddress.ToString();
    }

    /// <summary>The CUDA devices this machine has (none with a CPU-only TorchSharp backend).</summary>
    internal static int CudaDevices() => torch.cuda.is_available() ? torch.cuda.device_count() : 0;

    /// <summary>The synchronous form of <see cref="RunFitAsync"/>.</summary>
    public FitResult RunFit(SpecSource spec, ConfigGroup configs, DataHandle data, FitOptions? options = null) =>
        RunFitAsync(spec, configs, data, options).GetAwaiter().GetResult();

    /// <summary>
    /// Continues the fit a crash, a full disk or a cancel (Ctrl+C) interrupted, from the last completed chunk of every
    /// run: no completed chunk is trained again, and runs that ended stay ended (a cancelled fit's runs the cancel
    /// stopped go on; those stopped by the user stay stopped). Throws when the experiment has no such fit.
    /// </summary>
    public async Task<FitResult> ResumeFitAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        if (Recovery is { } recovery)
        {
            Recovery = null;
            files.Log($"fit {recovery.Manifest.Definition.FitId} rebuilt from its checkpoints and resumed");
            return await Operate(new ExperimentProtocol.RebuildFit(recovery.Manifest, recovery.States), recovery.Manifest.Definition.Settings, cancellation);
        }
        var state = await experiment.Ask<ExperimentState>(new ExperimentProtocol.GetExperiment(), TimeSpan.FromSeconds(30));
        if (state.Resumable is not { } fit)
            throw new InvalidOperationException(state.Fits.Count == 0 ? $"experiment '{Name}' has no fit to resume" : $"every fit of experiment '{Name}' has ended: nothing to resume");
        files.Log($"fit {fit.Definition.FitId} resumed");
        return await Operate(new ExperimentProtocol.ResumeFit(), fit.Definition.Settings, cancellation);
    }

    /// <summary>
    /// Tests trained runs on the <c>test</c> partition, each restored from the checkpoint
    /// <see cref="Evaluation.TestOptions.Checkpoint"/> picks (default <c>final</c>): the loss, the named metrics and
    /// <c>AggregateMetrics</c>, computed as validation computes them, in test mode. By default every run that completed,
    /// in any fit of the experiment, with its fit's spec and data handle. Writes <c>test/run-N.csv</c> and
    /// <c>test/summary.csv</c>; a run that cannot be tested gets its error and the others go on. Refused while a fit runs.
    /// </summary>
    public Task<Evaluation.TestReport> RunTestAsync(Evaluation.TestOptions? options = null, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return new Evaluation.RunEvaluation(this, Checkpoints).TestAsync(options ?? new(), cancellation);
    }

    /// <summary>The synchronous form of <see cref="RunTestAsync"/>.</summary>
    public Evaluation.TestReport RunTest(Evaluation.TestOptions? options = null) => RunTestAsync(options).GetAwaiter().GetResult();

    /// <summary>
    /// Predicts with trained runs over the <c>predict</c> partition (<c>ComputeForward</c> in predict mode, no labels),
    /// each restored from the checkpoint <see cref="Evaluation.PredictOptions.Checkpoint"/> picks; the runs chosen as for
    /// <see cref="RunTestAsync"/>. Writes <c>predict/run-N.csv</c> (or <c>.parquet</c>): <c>id</c>, then a column per
    /// scalar output and one per element of a vector output (<c>logits_0</c>, <c>logits_1</c>, ...), one row per predict id
    /// in partition order.
    /// </summary>
    public Task<Evaluation.PredictReport> RunPredictAsync(Evaluation.PredictOptions? options = null, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return new Evaluation.RunEvaluation(this, Checkpoints).PredictAsync(options ?? new(), cancellation);
    }

    /// <summary>The synchronous form of <see cref="RunPredictAsync"/>.</summary>
    public Evaluation.PredictReport RunPredict(Evaluation.PredictOptions? options = null) => RunPredictAsync(options).GetAwaiter().GetResult();

    /// <summary>The runs of every fit of the experiment, with their configs, from its journal.</summary>
    public async Task<ExperimentState> StateAsync() =>
        await experiment.Ask<ExperimentState>(new ExperimentProtocol.GetExperiment(), TimeSpan.FromSeconds(30));

    private async Task<FitResult> Operate(object command, RuntimeSettings settings, CancellationToken cancellation)
    {
        // libtorch's intra-op threads are process-wide: the loaders and the CPU workers share the cores.
        torch.set_num_threads(settings.TorchThreadsFor(DeviceSpec.Parse(settings.Devices, CudaDevices).Count(d => !d.IsCuda)));
        await using var _ = cancellation.Register(() => experiment.Tell(new FitProtocol.CancelFit()));
        var reply = await experiment.Ask(command, Timeout.InfiniteTimeSpan);
        switch (reply)
        {
            case FitProtocol.FitCompleted { Interrupted: { } why } interrupted:
                return Interrupted(interrupted, why);
            case FitProtocol.FitCompleted completed:
                // Every event of the fit was published before its end: once the bridge answers, all were handled.
                await bridge.Ask<EventBridge.Flushed>(new EventBridge.Flush(), TimeSpan.FromSeconds(30));
                var journaled = await StateAsync();
                files.WriteRuns(completed.Runs, journaled.Fits.SelectMany(f => f.Runs).ToList());
                files.Log($"fit ended{(completed.Cancelled ? " (cancelled)" : "")}: " +
                          string.Join(", ", completed.Runs.Select(r => $"run {r.RunId} {r.Status}{(r.EndedBy is null ? "" : $" ({r.EndedBy})")}")));
                return new FitResult(completed.Runs, completed.Cancelled);
            case Status.Failure { Cause: var cause }:
                files.Log($"fit could not start: {cause.Message}");
                throw cause is RapidFireException or InvalidOperationException ? cause : new InvalidOperationException(cause.Message, cause);
            case ExperimentProtocol.NothingToResume nothing:
                throw new InvalidOperationException(nothing.Reason);
            default:
                throw new InvalidOperationException($"unexpected reply {reply}");
        }
    }

    /// <summary>
    /// The fit stopped before its runs ended because nothing more could be journaled (a full disk): writes what it can
    /// of runs.csv and the log (each file that cannot be written is noted in <see cref="ExperimentFiles.Unwritten"/>)
    /// and says how to go on. The journal keeps every completed chunk; a resume continues the fit.
    /// </summary>
    private FitResult Interrupted(FitProtocol.FitCompleted interrupted, string why)
    {
        IReadOnlyList<RunState> runs = interrupted.Runs;
        if (runs.Count == 0)
            lock (lastRuns) runs = [.. lastRuns.Values.OrderBy(r => r.RunId)];
        files.WriteRuns(runs);
        files.Log($"fit interrupted: {why}");
        return new FitResult(runs, false, why);
    }

    /// <summary>
    /// Carries out an IC operation on a run of the fit in progress (see <see cref="ControlOp"/>): a run that is training
    /// takes it at its next chunk boundary (the outcome is then <see cref="ControlStatus.Pending"/>), any other at once.
    /// An operation that does not apply comes back <see cref="ControlStatus.Rejected"/> with the reason. Every operation
    /// is journaled and shows in the IC log (<see cref="ControlLogAsync"/>, <c>ic-log.csv</c>).
    /// </summary>
    public async Task<ControlOutcome> ControlAsync(ControlOp op, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return await experiment.Ask<ControlOutcome>(new ExperimentProtocol.RequestControl(op), TimeSpan.FromSeconds(60), cancellation);
    }

    /// <summary>Stops a run at its next chunk boundary; it keeps its progress (see <see cref="ControlAsync"/>).</summary>
    public Task<ControlOutcome> StopRunAsync(int runId) => ControlAsync(ControlOp.Stop(runId));

    /// <summary>Resumes a stopped run from where it stopped.</summary>
    public Task<ControlOutcome> ResumeRunAsync(int runId) => ControlAsync(ControlOp.Resume(runId));

    /// <summary>Deletes a run: it ends and leaves the live views; its journal and files stay.</summary>
    public Task<ControlOutcome> DeleteRunAsync(int runId) => ControlAsync(ControlOp.Delete(runId));

    /// <summary>
    /// Clones a run with some knobs changed (paths such as <c>optimizer.args.lr</c>, values as JSON); with
    /// <paramref name="warm"/>, the clone starts from the parent's model, optimizer and scheduler state at its last
    /// finished chunk. The outcome names the new run.
    /// </summary>
    public Task<ControlOutcome> CloneRunAsync(int runId, IReadOnlyDictionary<string, string> changes, bool warm = false) =>
        ControlAsync(ControlOp.CloneOf(runId, changes, warm));

    /// <summary>A run's metrics so far (every minibatch, every closed epoch), as journaled; null for an unknown run.</summary>
    public async Task<RunMetrics?> MetricsAsync(int runId, CancellationToken cancellation = default)
    {
        var runs = await RunsAsync(cancellation);
        return runs.Runs.Any(r => r.RunId == runId) ? files.Metrics(runId) : null;
    }

    /// <summary>The IC log: every operation asked for in this experiment, oldest first.</summary>
    public async Task<IReadOnlyList<ControlRecord>> ControlLogAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return await experiment.Ask<IReadOnlyList<ControlRecord>>(new ExperimentProtocol.GetControlLog(), TimeSpan.FromSeconds(30), cancellation);
    }

    /// <summary>Every run's latest state: the fit's in progress, else the journal's runs of the last fit as its end left them.</summary>
    public async Task<RunsSnapshot> RunsAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        var status = await experiment.Ask<FitProtocol.FitStatus>(new FitProtocol.GetStatus(), TimeSpan.FromSeconds(30), cancellation);
        if (status.Fitting) return new RunsSnapshot(status.Runs, true);
        lock (lastRuns) return new RunsSnapshot([.. lastRuns.Values.OrderBy(r => r.RunId)], false);
    }

    /// <summary>Cancels the current operation, if any; its task returns with <see cref="FitResult.Cancelled"/>.</summary>
    public void Cancel() => experiment.Tell(new FitProtocol.CancelFit());

    /// <summary>
    /// Closes the experiment: a fit in progress is cancelled, the experiment is marked ended in its journal, and its
    /// artifacts (final checkpoints, metric files, log) stay in its folder.
    /// </summary>
    public void End() => Close(markEnded: true);

    /// <summary>
    /// Releases the runtime without marking the experiment ended (what a crash leaves, on purpose): it can be
    /// resumed. <see cref="End"/> is the normal way to close an experiment.
    /// </summary>
    public void Dispose() => Close(markEnded: false);

    private void Close(bool markEnded)
    {
        if (ended) return;
        ended = true;
        try
        {
            if (markEnded)
            {
                Cancel();
                experiment.Ask<ExperimentProtocol.ExperimentClosed>(new ExperimentProtocol.EndExperiment(), TimeSpan.FromSeconds(60))
                    .Wait(TimeSpan.FromSeconds(60));
                files.Log($"experiment {Name} ended");
            }
        }
        catch (Exception e) when (e is AggregateException or TimeoutException or AskTimeoutException)
        {
            files.Log($"experiment {Name} could not be marked ended: {e.Message}");
        }
        finally
        {
            system.Terminate().Wait(TimeSpan.FromSeconds(30));
            journal.CheckpointNow(); // the whole journal in its file
            storage.Dispose();
            directoryLock.Dispose();
            lock (ActiveLock)
                if (active == this) active = null;
        }
    }

    private void Publish(ExperimentEvent e)
    {
        if (e is ControlLogged { Record: var record }) files.Control(record);
        // the epochs' metrics are in the metric files
        if (e is not EpochDone && LogLines.Of(e, full: true) is { } line) files.Log(line);
        if (e is RunChanged { Run: var latest }) lock (lastRuns) lastRuns[latest.RunId] = latest;
        Progress?.Invoke(e);
    }

    /// <summary>
    /// The journal's database drivers (SQLite, Npgsql through linq2db) block thread-pool threads on disk and network
    /// I/O. On a 2-core machine the pool starts with 2 threads and adds more slowly, so a blocked pool delays every
    /// actor message, the trainer's included. Keeping a few more threads ready costs idle threads only.
    /// </summary>
    private static void ReserveThreadPool()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        var wanted = Math.Max(16, 4 * Environment.ProcessorCount);
        if (workers < wanted) ThreadPool.SetMinThreads(wanted, Math.Max(io, wanted));
    }

    /// <summary>The experiment's journal must answer before anything is done with it; a broken one is named at once.</summary>
    private void AwaitJournal()
    {
        var state = experiment.Ask<ExperimentState>(new ExperimentProtocol.GetExperiment(), TimeSpan.FromSeconds(60));
        var finished = Task.WhenAny(state, journalFailure.Task).GetAwaiter().GetResult();
        if (finished == journalFailure.Task || state.IsFaulted)
            throw new InvalidOperationException($"the journal of experiment '{Name}' cannot be used: " + SecretMask.MaskConnectionString(
                (journalFailure.Task.IsCompleted ? journalFailure.Task.Result : state.Exception?.InnerException?.Message) ?? ""));
    }

    /// <summary>Reads every run's journal back into the metric files (before a resumed fit adds to them).</summary>
    private async Task RebuildFilesAsync()
    {
        var state = await StateAsync();
        foreach (var control in state.Controls) files.Control(control);
        foreach (var run in state.Fits.SelectMany(f => f.Runs))
        {
            var folded = new RunState(run.RunId, run.Config);
            foreach (var e in await JournalHistory.RunEventsAsync(system, $"{Name}/", run.RunId))
            {
                files.Apply(run.RunId, e);
                folded = folded.Apply(e);
            }
            lock (lastRuns) lastRuns[run.RunId] = folded;
        }
    }

    /// <summary>Forwards the runtime's events to <see cref="Progress"/> and the experiment's files.</summary>
    private sealed class EventBridge : ReceiveActor
    {
        public sealed record Flush;

        public sealed record Flushed;

        public EventBridge(Experiment experiment)
        {
            Receive<Flush>(_ => Sender.Tell(new Flushed()));
            Receive<RunUpdated>(e => experiment.Publish(new RunChanged(e.State, e.Recovered)));
            Receive<RunJournaled>(e => experiment.files.Apply(e.RunId, e.Event));
            Receive<MinibatchRecord>(e => experiment.Publish(new MinibatchDone(e)));
            Receive<MetricsProtocol.EpochRecorded>(e =>
            {
                experiment.Publish(new EpochDone(e));
                experiment.journal.CheckpointSoon();
            });
            Receive<GpuProtocol.TaskFinished>(e => experiment.Publish(new TaskDone(e)));
            Receive<RunWarning>(e => experiment.Publish(new Warning(e.Message)));
            Receive<FitProtocol.WorkerChanged>(e => experiment.Publish(new ClusterNotice(e.Worker, e.Message)));
            Receive<DataLoaderProtocol.PrepCacheNoted>(e => experiment.Publish(new CacheNotice(e.Message)));
            Receive<ControlRecord>(e => experiment.Publish(new ControlLogged(e)));
            Receive<RunPruned>(e => experiment.Publish(new RunPrunedBy(e.RunId, e.Reason)));
            Receive<RapidFire.Spec.Progress.ProgressUpdate>(e => experiment.Publish(new ProgressReported(e)));
            Receive<ExperimentProtocol.JournalUnavailable>(e => experiment.journalFailure.TrySetResult(e.Reason));
            Receive<ExperimentProtocol.FitDefined>(e => experiment.files.WriteManifest(e.Manifest));
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

    /// <summary>What the journal records: a spec file is copied into the experiment's <c>spec/</c> folder, so a resume compiles what the fit started with.</summary>
    internal abstract SpecReference Reference(string experimentPath);

    private sealed record FileSpec(string Path) : SpecSource
    {
        internal override SpecReference Reference(string experimentPath)
        {
            SpecCompiler.CompileFile(Path); // a broken spec is refused before anything is journaled
            var folder = System.IO.Path.Combine(experimentPath, "spec");
            Directory.CreateDirectory(folder);
            var text = File.ReadAllText(Path);
            var copy = System.IO.Path.Combine(folder, System.IO.Path.GetFileName(Path));
            for (var i = 2; File.Exists(copy) && File.ReadAllText(copy) != text; i++)
                copy = System.IO.Path.Combine(folder, $"{System.IO.Path.GetFileNameWithoutExtension(Path)}.{i}.cs");
            if (!File.Exists(copy)) File.WriteAllText(copy, text);
            return SpecReference.FromFile(copy);
        }
    }

    private sealed record TypeSpec(Type Type) : SpecSource
    {
        internal override SpecReference Reference(string experimentPath) => SpecReference.FromType(Type);
    }
}
