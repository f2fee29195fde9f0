using System.Text.Json;
using System.Threading.Channels;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Host.Export;

/// <summary>
/// Writes an experiment's runs as TensorBoard event files: <c>DIR/&lt;experiment&gt;/run-N/events.out.tfevents.*</c>,
/// so that <c>tensorboard --logdir DIR</c> shows every run. Per run: its knobs as hparams (secret-looking ones
/// <c>***</c>) and how it ended, and the same scalars with the same steps as the MLflow export
/// (<see cref="MlflowRunTracker"/>): <c>minibatch_&lt;metric&gt;</c> per train minibatch, <c>train_&lt;metric&gt;</c> and
/// <c>val_&lt;metric&gt;</c> per epoch.
/// </summary>
/// <remarks>
/// The <see cref="Experiment.Progress"/> handler only queues the event; a background loop writes the files. The runs'
/// states are read, not the live minibatch events, so the files hold what the journal holds; where the export got to is
/// kept in <c>tensorboard.json</c> in the experiment folder, so a resumed fit appends a new event file per run with only
/// what is new. A write that fails is logged as a warning in <c>experiment.log</c> and ends the export: TensorBoard
/// never fails a fit, and the experiment's CSV files keep every metric.
/// </remarks>
/// <example>
/// <code>
/// await using var tensorboard = TensorBoardExporter.Attach(experiment, "tensorboard");
/// var result = await experiment.RunFitAsync(spec, configs, data);
/// await tensorboard.FlushAsync();
/// </code>
/// </example>
public sealed class TensorBoardExporter : ExperimentExporter
{
    /// <summary>The file in the experiment folder that says where the export got to.</summary>
    public const string StateFileName = "tensorboard.json";

    private readonly string experimentName;
    private readonly Action<string> log;
    private readonly string? stateFile;
    private readonly Task loop;
    private readonly Dictionary<int, RunExport> runs = [];
    private bool failed;
    private int disposed;

    /// <summary>Starts an exporter into <paramref name="directory"/>/<paramref name="experimentName"/>; feed it with <see cref="ExperimentExporter.Observe"/> (or use <see cref="Attach"/>).</summary>
    /// <param name="directory">TensorBoard's log folder (<c>tensorboard --logdir</c>).</param>
    /// <param name="experimentName">The RapidFire experiment: its runs are the folders <c>run-N</c> under its own.</param>
    /// <param name="log">Takes the exporter's lines (warnings start with <c>warning: tensorboard:</c>).</param>
    /// <param name="stateFile">Where the export's progress is kept across resumes (null: nowhere).</param>
    public TensorBoardExporter(string directory, string experimentName, Action<string> log, string? stateFile = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        ArgumentNullException.ThrowIfNull(log);
        Directory = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, experimentName));
        this.experimentName = experimentName;
        this.log = log;
        this.stateFile = stateFile;
        LoadState();
        loop = Task.Run(RunAsync);
    }

    /// <summary>
    /// Starts an exporter for <paramref name="experiment"/> into <paramref name="directory"/> and subscribes it to its
    /// <see cref="Experiment.Progress"/>: attach it before <see cref="Experiment.RunFitAsync"/> or
    /// <see cref="Experiment.ResumeFitAsync"/>. Its lines go to <c>experiment.log</c> (and to <paramref name="alsoLog"/>).
    /// </summary>
    public static TensorBoardExporter Attach(Experiment experiment, string directory, Action<string>? alsoLog = null)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        return Subscribe(new TensorBoardExporter(directory, experiment.Name, LogTo(experiment, alsoLog),
            System.IO.Path.Combine(experiment.Path, StateFileName)), experiment);
    }

    /// <summary>The experiment's folder of runs: <c>DIR/&lt;experiment&gt;</c>.</summary>
    public string Directory { get; }

    /// <summary>The folder of run <paramref name="runId"/>'s event files.</summary>
    public string RunDirectory(int runId) => System.IO.Path.Combine(Directory, $"run-{runId}");

    /// <inheritdoc />
    protected override bool Takes(ExperimentEvent e) => e is RunChanged or ChunkRecorded;

    /// <summary>Unsubscribes, writes what is queued, and closes the files.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        Detach();
        Inbox.Writer.TryComplete();
        await loop;
        foreach (var run in runs.Values) run.Writer?.Dispose();
    }

    private async Task RunAsync()
    {
        var reader = Inbox.Reader;
        while (await reader.WaitToReadAsync())
        {
            var flushes = new List<TaskCompletionSource>();
            var changed = false;
            while (reader.TryRead(out var item))
            {
                if (item is TaskCompletionSource flush) flushes.Add(flush);
                else changed |= item switch
                {
                    RunChanged e => Take(e.Run),
                    ChunkRecorded chunk => Take(chunk),
                    _ => false,
                };
            }
            if (changed) Commit();
            foreach (var flush in flushes) flush.TrySetResult();
        }
    }

    /// <summary>Writes the minibatches of a chunk a run trained; true when something was written.</summary>
    private bool Take(ChunkRecorded chunk) => Write(chunk.RunId, (run, now) =>
    {
        var update = run.Tracker.Observe(chunk, (long)(now * 1000));
        if (update.IsEmpty) return false;
        var writer = run.Writer ??= new TensorBoardEventWriter(RunDirectory(chunk.RunId), now);
        foreach (var metric in update.Metrics) writer.WriteScalar(metric.Key, metric.Value, metric.Step, now);
        return true;
    });

    /// <summary>Writes what is new in a run's state; true when something was written.</summary>
    private bool Take(RunState state) => Write(state.RunId, (run, now) =>
    {
        var update = run.Tracker.Observe(state, (long)(now * 1000));
        if (run.HParamsWritten && update.IsEmpty) return false;
        var writer = run.Writer ??= new TensorBoardEventWriter(RunDirectory(state.RunId), now);
        if (!run.HParamsWritten)
        {
            writer.WriteSessionStart(SecretMask.Mask(state.Config).Leaves(), experimentName, now);
            run.HParamsWritten = true;
        }
        foreach (var metric in update.Metrics) writer.WriteScalar(metric.Key, metric.Value, metric.Step, now);
        if (update.Status is not null && state.IsEnded) writer.WriteSessionEnd(SessionStatus(state.Status), now);
        return true;
    });

    /// <summary>Runs <paramref name="write"/> on run <paramref name="runId"/>'s export; a failure stops the export, with a warning.</summary>
    private bool Write(int runId, Func<RunExport, double, bool> write)
    {
        if (failed) return false;
        try
        {
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
            if (!runs.TryGetValue(runId, out var run)) runs[runId] = run = new RunExport(new MlflowRunTracker(runId));
            return write(run, now);
        }
        catch (Exception e) // a full disk, a folder it may not write, or a bug: never the fit's failure, never the loop's end
        {
            failed = true;
            log($"warning: tensorboard: writing the event files of run {runId} under {Directory} failed: {e.Message}; " +
                "the export stopped, the experiment's CSV files hold every metric");
            return false;
        }
    }

    private static TensorBoardSessionStatus SessionStatus(RunStatus status) => status switch
    {
        RunStatus.Completed => TensorBoardSessionStatus.Success,
        RunStatus.Failed => TensorBoardSessionStatus.Failure,
        _ => TensorBoardSessionStatus.Unknown,
    };

    /// <summary>Flushes the files, then records the runs' progress (a crash in between writes a few points twice, never loses one).</summary>
    private void Commit()
    {
        try
        {
            foreach (var run in runs.Values) run.Writer?.Flush();
            if (stateFile is null) return;
            var saved = new SavedState(Directory, runs.ToDictionary(r => r.Key, r => new SavedRun(r.Value.Tracker.Progress, r.Value.HParamsWritten)));
            var temp = stateFile + ".tmp";
            File.WriteAllText(temp, JsonSerializer.Serialize(saved, StateJson));
            File.Move(temp, stateFile, overwrite: true);
        }
        catch (IOException e)
        {
            log($"warning: tensorboard: {stateFile ?? Directory} cannot be written: {e.Message}");
        }
    }

    /// <summary>Reads <c>tensorboard.json</c> when it names the same folder: a resumed fit goes on from there.</summary>
    private void LoadState()
    {
        if (stateFile is null || !File.Exists(stateFile)) return;
        try
        {
            var saved = JsonSerializer.Deserialize<SavedState>(File.ReadAllText(stateFile), StateJson);
            if (saved is null || saved.Directory != Directory) return;
            foreach (var (id, run) in saved.Runs)
                runs[id] = new RunExport(new MlflowRunTracker(id, run.Progress)) { HParamsWritten = run.HParamsWritten };
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            log($"warning: tensorboard: {stateFile} cannot be read ({e.Message}): the runs' scalars are written again from their first step");
        }
    }

    private static readonly JsonSerializerOptions StateJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    private sealed record SavedState(string Directory, Dictionary<int, SavedRun> Runs);

    private sealed record SavedRun(MlflowRunProgress Progress, bool HParamsWritten);

    private sealed class RunExport(MlflowRunTracker tracker)
    {
        public MlflowRunTracker Tracker { get; } = tracker;
        public TensorBoardEventWriter? Writer { get; set; }
        public bool HParamsWritten { get; set; }
    }
}
