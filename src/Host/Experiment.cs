using Akka.Actor;
using RapidFire.Actors;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Checkpoints;
using RapidFire.Host.Api;
using RapidFire.Host.Hosting;
using RapidFire.Actors.Persistence;
using RapidFire.Spec;
using RapidFire.Spec.Data;
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
public sealed partial class Experiment : IDisposable, IExperimentControl
{
    /// <summary>The experiments directory used when none is given.</summary>
    public const string DefaultDirectory = "rapidfire-experiments";

    private static readonly object ActiveLock = new();
    private static Experiment? active;

    private readonly RapidFireNode node;
    private readonly ActorSystem system;
    private readonly RuntimeSettings defaults;
    private readonly ExperimentFiles files;
    private readonly IActorRef experiment;
    private readonly ExperimentOutput output;
    private readonly FileStream directoryLock;
    private readonly ExperimentStorage storage;
    private readonly ExperimentJournal journal;
    private bool ended;

    /// <summary>Whether <see cref="End"/> or <see cref="Dispose"/> has closed the experiment.</summary>
    internal bool IsClosed => ended;

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
        Name = name;
        // An app that only makes an Experiment (a file-based app, a test) gets the native-load fix here, before any torch.
        RapidFire.Spec.Native.TorchNative.UseLibTorch(config?.GetString(RapidFire.Spec.Native.TorchNative.LibTorchDirSetting, null));
        RapidFire.Spec.Native.TorchNative.EnsureLoaded();
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
                node = RapidFireNode.Start(hocon);
                system = node.System;
                ClusterAddress = node.FormCluster();
                files = new ExperimentFiles(Path, Export.ParquetTables.IsEnabled(user));
                output = new ExperimentOutput(files, journal);
                output.Attach(system);
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
                node?.Dispose();
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
    public sealed record RecoveryPlan(ExperimentProtocol.FitManifest Manifest, IReadOnlyDictionary<int, RunSnapshot> States, IReadOnlyList<string> Report);

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
    public event Action<ExperimentEvent>? Progress
    {
        add => output.Progress += value;
        remove => output.Progress -= value;
    }

    /// <summary>
    /// This experiment's node address on an Akka cluster (<c>akka.tcp://rapidfire@HOST:PORT</c>: what workers give as
    /// <c>--seed-nodes</c>), or null when the experiment runs embedded, on no cluster.
    /// </summary>
    public string? ClusterAddress { get; }

    /// <summary>The CUDA devices this machine has (none with a CPU-only TorchSharp backend).</summary>
    internal static int CudaDevices() => torch.cuda.is_available() ? torch.cuda.device_count() : 0;

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
            node.Dispose();
            journal.CheckpointNow(); // the whole journal in its file
            storage.Dispose();
            directoryLock.Dispose();
            lock (ActiveLock)
                if (active == this) active = null;
        }
    }

    /// <summary>The experiment's journal must answer before anything is done with it; a broken one is named at once.</summary>
    private void AwaitJournal()
    {
        var state = experiment.Ask<ExperimentState>(new ExperimentProtocol.GetExperiment(), TimeSpan.FromSeconds(60));
        var finished = Task.WhenAny(state, output.JournalFailure).GetAwaiter().GetResult();
        if (finished == output.JournalFailure || state.IsFaulted)
            throw new InvalidOperationException($"the journal of experiment '{Name}' cannot be used: " + SecretMask.MaskConnectionString(
                (output.JournalFailure.IsCompleted ? output.JournalFailure.Result : state.Exception?.InnerException?.Message) ?? ""));
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
            output.Remember(folded);
        }
    }
}
