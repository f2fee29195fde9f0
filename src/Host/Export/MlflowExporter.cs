using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using RapidFire.Actors.Control;

namespace RapidFire.Host.Export;

/// <summary>
/// Mirrors an experiment into an MLflow tracking server over its REST API 2.0: one MLflow experiment per RapidFire
/// experiment (found by name, else created), one MLflow run per RapidFire run (<c>run-N</c>, tags
/// <c>rapidfire.run_id</c>, <c>rapidfire.experiment</c>, and <c>rapidfire.cloned_from</c> / <c>rapidfire.warm_start</c>
/// for a clone), its knobs as params (secret-looking ones <c>***</c>), its metrics with steps (see
/// <see cref="MlflowRunTracker"/>), and its status (<c>FINISHED</c>, <c>FAILED</c>, <c>KILLED</c> with the end time).
/// </summary>
/// <remarks>
/// <para>The experiment's <see cref="Experiment.Progress"/> handler only queues the event; a background loop batches
/// what is new (at most 1,000 metrics and 100 params per <c>runs/log-batch</c>) and sends it every
/// <see cref="MlflowOptions.SendInterval"/>, at once when a batch is full, and on <see cref="ExperimentExporter.FlushAsync"/>. A request
/// that fails is retried with backoff; one that still fails is dropped and logged as a warning in
/// <c>experiment.log</c>, and after <see cref="MlflowOptions.GiveUpAfter"/> failures in a row the exporter stops:
/// MLflow never fails or slows a fit, and the experiment's CSV files keep every metric.</para>
/// <para>Where it got to is kept in <c>mlflow.json</c> in the experiment folder (the MLflow experiment and run ids,
/// each run's exported steps), so a resumed fit goes on logging into the same MLflow runs. The runs' states are read,
/// not the live minibatch events, so what MLflow shows is what the journal holds: a chunk abandoned by a crash or a
/// cancellation is not logged, and its retraining is not logged twice.</para>
/// </remarks>
/// <example>
/// <code>
/// await using var mlflow = MlflowExporter.Attach(experiment, MlflowOptions.Resolve(uri)!);
/// var result = await experiment.RunFitAsync(spec, configs, data);
/// await mlflow.FlushAsync();
/// </code>
/// </example>
public sealed class MlflowExporter : ExperimentExporter
{
    /// <summary>The file in the experiment folder that says where the export got to.</summary>
    public const string StateFileName = "mlflow.json";

    private readonly MlflowOptions options;
    private readonly string experimentName;
    private readonly Action<string> log;
    private readonly string? stateFile;
    private readonly MlflowRest rest;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task loop;
    private readonly SortedDictionary<int, RunExport> runs = [];
    private readonly Dictionary<int, (int Parent, bool Warm)> clones = [];
    private string? experimentId;
    private int failuresInARow;
    private bool gaveUp;
    private bool stateChanged;
    private int disposed;

    /// <summary>
    /// Starts an exporter for the RapidFire experiment <paramref name="experimentName"/>; feed it with
    /// <see cref="ExperimentExporter.Observe"/> (or use <see cref="Attach"/>).
    /// </summary>
    /// <param name="options">The tracking server and how to reach it.</param>
    /// <param name="experimentName">The RapidFire experiment (the MLflow experiment's name unless <see cref="MlflowOptions.ExperimentName"/> says otherwise).</param>
    /// <param name="log">Takes the exporter's log lines (warnings start with <c>warning: mlflow:</c>); never given credentials.</param>
    /// <param name="stateFile">Where the export's progress is kept across resumes (null: nowhere).</param>
    public MlflowExporter(MlflowOptions options, string experimentName, Action<string> log, string? stateFile = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        this.options = options;
        this.experimentName = options.ExperimentName ?? experimentName;
        this.log = log;
        this.stateFile = stateFile;
        rest = new MlflowRest(options);
        LoadState();
        loop = Task.Run(RunAsync);
    }

    /// <summary>
    /// Starts an exporter for <paramref name="experiment"/> and subscribes it to its <see cref="Experiment.Progress"/>:
    /// attach it before <see cref="Experiment.RunFitAsync"/> or <see cref="Experiment.ResumeFitAsync"/>. Its lines go to
    /// <c>experiment.log</c> (and to <paramref name="alsoLog"/>, such as the console); its progress to
    /// <c>mlflow.json</c> in the experiment folder.
    /// </summary>
    public static MlflowExporter Attach(Experiment experiment, MlflowOptions options, Action<string>? alsoLog = null)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        return Subscribe(new MlflowExporter(options, experiment.Name, LogTo(experiment, alsoLog),
            Path.Combine(experiment.Path, StateFileName)), experiment);
    }

    /// <summary>The MLflow experiment's id, once found or created.</summary>
    public string? ExperimentId => experimentId;

    /// <inheritdoc />
    protected override bool Takes(ExperimentEvent e) => e is RunChanged or ChunkRecorded or ControlLogged { Record.NewRunId: not null };

    /// <summary>Unsubscribes, sends what is buffered (waiting at most <see cref="MlflowOptions.FlushTimeout"/>), and stops.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        Detach();
        using (var timeout = new CancellationTokenSource(options.FlushTimeout))
        {
            try
            {
                await FlushAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Warn($"what was still buffered after {options.FlushTimeout.TotalSeconds:0.#} s was not sent");
            }
        }
        Inbox.Writer.TryComplete();
        await stopping.CancelAsync();
        try
        {
            await loop;
        }
        catch (OperationCanceledException)
        {
        }
        rest.Dispose();
        stopping.Dispose();
    }

    private async Task RunAsync()
    {
        var reader = Inbox.Reader;
        var flushes = new List<TaskCompletionSource>();
        var lastSent = DateTime.UtcNow;
        Task<bool>? waiting = null;
        var open = true;
        while (open)
        {
            waiting ??= reader.WaitToReadAsync(stopping.Token).AsTask();
            var wait = options.SendInterval - (DateTime.UtcNow - lastSent);
            if (wait > TimeSpan.Zero) await Task.WhenAny(waiting, Task.Delay(wait, stopping.Token));
            if (waiting.IsCompleted)
            {
                open = waiting.IsCompletedSuccessfully && waiting.Result;
                waiting = null;
            }
            while (reader.TryRead(out var item))
            {
                if (item is TaskCompletionSource flush) flushes.Add(flush);
                else Take((ExperimentEvent)item);
            }
            var due = !open || flushes.Count > 0 || DateTime.UtcNow - lastSent >= options.SendInterval ||
                      runs.Values.Sum(r => r.PendingMetrics) >= MlflowLimits.MetricsPerBatch;
            if (!due) continue;
            try
            {
                if (!gaveUp && runs.Values.Any(r => r.HasWork)) await SendAsync(stopping.Token);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                open = false;
            }
            catch (Exception e) // a bug here must not end the loop (flushes would hang) nor reach the fit
            {
                Failed($"export failed: {e.Message}");
            }
            lastSent = DateTime.UtcNow;
            foreach (var flush in flushes) flush.TrySetResult();
            flushes.Clear();
        }
        foreach (var flush in flushes) flush.TrySetResult();
    }

    /// <summary>Turns an event into work for its run (on the loop: the trackers are not shared).</summary>
    private void Take(ExperimentEvent e)
    {
        if (gaveUp) return;
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        switch (e)
        {
            case ChunkRecorded chunk:
                var trained = RunOf(chunk.RunId, now).Tracker.Observe(chunk, now);
                if (!trained.IsEmpty) runs[chunk.RunId].Outbox.Enqueue(trained);
                break;
            case RunChanged { Run: var state }:
                var run = RunOf(state.RunId, now);
                if (!run.ParamsLogged && run.Params is null) run.Params = MlflowRunTracker.Params(state.Config);
                if (clones.Remove(state.RunId, out var clone)) run.Outbox.EnqueueTags(CloneTags(clone));
                var update = run.Tracker.Observe(state, now);
                if (!update.IsEmpty) run.Outbox.Enqueue(update);
                break;
            case ControlLogged { Record: { NewRunId: { } child, Op: { Kind: ControlKind.Clone } op } }:
                if (runs.TryGetValue(child, out var known)) known.Outbox.EnqueueTags(CloneTags((op.RunId, op.Warm)));
                else clones[child] = (op.RunId, op.Warm);
                break;
        }
    }

    /// <summary>The export of run <paramref name="runId"/>, started at <paramref name="now"/> when it is new.</summary>
    private RunExport RunOf(int runId, long now)
    {
        if (!runs.TryGetValue(runId, out var run))
            runs[runId] = run = new RunExport(runId, new MlflowRunTracker(runId), null) { StartTime = now };
        return run;
    }

    private static IReadOnlyList<KeyValuePair<string, string>> CloneTags((int Parent, bool Warm) clone) =>
        [new("rapidfire.cloned_from", clone.Parent.ToString(CultureInfo.InvariantCulture)), new("rapidfire.warm_start", clone.Warm ? "true" : "false")];

    /// <summary>Sends every run's pending work, in order per run: creation and params, then metrics and tags, then status.</summary>
    private async Task SendAsync(CancellationToken cancellation)
    {
        if (experimentId is null && !await Try("setting up the MLflow experiment", SetUpExperimentAsync, "; tried again with the next batch", cancellation)) return;
        foreach (var run in runs.Values.Where(r => r.HasWork).ToList())
        {
            if (gaveUp) break;
            if (run.MlflowRunId is null &&
                !await Try($"creating the MLflow run of run {run.RunId}", c => CreateRunAsync(run, c), "; tried again with the next batch", cancellation))
                continue; // its metrics wait
            if (!run.ParamsLogged && !await Try($"logging the params of run {run.RunId}", c => LogParamsAsync(run, c), "; they are dropped", cancellation))
                run.ParamsLogged = true; // the rest of the run is still worth sending
            while (run.Outbox.Count > 0 && !gaveUp)
            {
                var batch = NextBatch(run);
                var what = batch.Status is { } status ? $"setting run {run.RunId} {status}"
                    : $"logging {batch.Metrics.Count} metrics{(batch.Tags.Count > 0 ? $" and {batch.Tags.Count} tags" : "")} of run {run.RunId}";
                await Try(what, c => SendBatchAsync(run, batch, c), "; dropped", cancellation);
                if (batch.Progress is { } progress) run.Progress = progress;
                stateChanged = true;
            }
        }
        SaveState();
    }

    /// <summary>Runs a request; false (and a warning) when it failed. Enough failures in a row stop the exporter.</summary>
    private async Task<bool> Try(string what, Func<CancellationToken, Task> request, string consequence, CancellationToken cancellation)
    {
        if (gaveUp) return false;
        try
        {
            await request(cancellation);
            failuresInARow = 0;
            return true;
        }
        catch (Exception e) when (!cancellation.IsCancellationRequested) // MlflowException, or an answer that is not MLflow's
        {
            Failed($"{what} failed: {e.Message}{consequence}");
            return false;
        }
    }

    /// <summary>Warns; enough failures in a row stop the exporter for good.</summary>
    private void Failed(string warning)
    {
        Warn(warning);
        if (++failuresInARow < options.GiveUpAfter) return;
        gaveUp = true;
        Warn($"export stopped after {failuresInARow} failed requests in a row; the experiment's CSV files hold every metric");
        foreach (var run in runs.Values) run.Outbox.Clear();
    }

    private async Task SetUpExperimentAsync(CancellationToken cancellation)
    {
        var id = await rest.ExperimentIdByNameAsync(experimentName, cancellation);
        if (id is null)
        {
            try
            {
                id = await rest.CreateExperimentAsync(experimentName, cancellation);
            }
            catch (MlflowException e) when (e.ErrorCode == "RESOURCE_ALREADY_EXISTS") // created meanwhile by another client
            {
                id = await rest.ExperimentIdByNameAsync(experimentName, cancellation);
                if (id is null) throw;
            }
        }
        experimentId = id;
        stateChanged = true;
        log($"mlflow: exporting to {options.DisplayUri}, experiment '{experimentName}' (id {id})");
    }

    private async Task CreateRunAsync(RunExport run, CancellationToken cancellation)
    {
        List<KeyValuePair<string, string>> tags =
        [
            new("rapidfire.run_id", run.RunId.ToString(CultureInfo.InvariantCulture)),
            new("rapidfire.experiment", experimentName),
        ];
        run.MlflowRunId = await rest.CreateRunAsync(experimentId!, $"run-{run.RunId}", run.StartTime, tags, cancellation);
        stateChanged = true;
    }

    private async Task LogParamsAsync(RunExport run, CancellationToken cancellation)
    {
        foreach (var chunk in (run.Params ?? []).Chunk(MlflowLimits.ParamsPerBatch))
            await rest.LogBatchAsync(run.MlflowRunId!, [], chunk, [], cancellation);
        run.ParamsLogged = true;
        run.Params = null;
        stateChanged = true;
    }

    /// <summary>
    /// The run's next request: a status change alone (once what came before it was sent), or the queued metrics and
    /// tags that follow, merged up to MLflow's batch limits.
    /// </summary>
    private static Outbox.Entry NextBatch(RunExport run)
    {
        var first = run.Outbox.Dequeue();
        if (first.Status is not null) return first;
        var metrics = new List<MlflowMetric>(first.Metrics);
        var tags = new List<KeyValuePair<string, string>>(first.Tags);
        var progress = first.Progress;
        while (run.Outbox.TryPeek(out var next) && next.Status is null &&
               metrics.Count + next.Metrics.Count <= MlflowLimits.MetricsPerBatch &&
               tags.Count + next.Tags.Count <= MlflowLimits.TagsPerBatch &&
               metrics.Count + next.Metrics.Count + tags.Count + next.Tags.Count <= MlflowLimits.EntitiesPerBatch)
        {
            run.Outbox.Dequeue();
            metrics.AddRange(next.Metrics);
            tags.AddRange(next.Tags);
            progress = next.Progress ?? progress;
        }
        return new Outbox.Entry(metrics, tags, null, null, progress);
    }

    private async Task SendBatchAsync(RunExport run, Outbox.Entry batch, CancellationToken cancellation)
    {
        if (batch.Status is { } status) await rest.UpdateRunAsync(run.MlflowRunId!, status, batch.EndTime, cancellation);
        else await rest.LogBatchAsync(run.MlflowRunId!, batch.Metrics, [], batch.Tags, cancellation);
    }
    private void Warn(string message) => log($"warning: mlflow: {message}");

    /// <summary>Reads <c>mlflow.json</c>: its experiment and runs are reused when it names the same server and experiment.</summary>
    private void LoadState()
    {
        if (stateFile is null || !File.Exists(stateFile)) return;
        try
        {
            var saved = JsonSerializer.Deserialize<SavedState>(File.ReadAllText(stateFile), StateJson);
            if (saved is null || saved.TrackingUri != options.DisplayUri || saved.Experiment != experimentName) return;
            experimentId = saved.ExperimentId;
            foreach (var (id, run) in saved.Runs)
                runs[id] = new RunExport(id, new MlflowRunTracker(id, run.Progress), run.RunId) { ParamsLogged = true, Progress = run.Progress };
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            Warn($"{stateFile} cannot be read ({e.Message}): runs resumed now get new MLflow runs");
        }
    }

    private void SaveState()
    {
        if (stateFile is null || !stateChanged || experimentId is null) return;
        var saved = new SavedState(options.DisplayUri, experimentName, experimentId,
            runs.Values.Where(r => r.MlflowRunId is not null).ToDictionary(r => r.RunId, r => new SavedRun(r.MlflowRunId!, r.Progress)));
        try
        {
            var temp = stateFile + ".tmp";
            File.WriteAllText(temp, JsonSerializer.Serialize(saved, StateJson));
            File.Move(temp, stateFile, overwrite: true);
            stateChanged = false;
        }
        catch (IOException e)
        {
            Warn($"{stateFile} cannot be written: {e.Message}");
        }
    }

    private static readonly JsonSerializerOptions StateJson = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    private sealed record SavedState(string TrackingUri, string Experiment, string ExperimentId, Dictionary<int, SavedRun> Runs);

    private sealed record SavedRun(string RunId, MlflowRunProgress Progress);

    /// <summary>One run's export: its MLflow run, its tracker, and the updates waiting to be sent, in order.</summary>
    private sealed class RunExport(int runId, MlflowRunTracker tracker, string? mlflowRunId)
    {
        public int RunId { get; } = runId;
        public MlflowRunTracker Tracker { get; } = tracker;
        public string? MlflowRunId { get; set; } = mlflowRunId;
        public long StartTime { get; init; }
        public IReadOnlyList<KeyValuePair<string, string>>? Params { get; set; }
        public bool ParamsLogged { get; set; }
        public MlflowRunProgress Progress { get; set; } = new();
        public Outbox Outbox { get; } = new();
        public int PendingMetrics => Outbox.Metrics;
        public bool HasWork => Outbox.Count > 0 || MlflowRunId is null || !ParamsLogged;
    }

    /// <summary>
    /// A run's updates waiting to be sent, in order, each cut into entries that fit one request: metrics and tags
    /// (at most 900 metrics and 100 tags, so an entry always fits a batch), then the status change on its own. The
    /// last entry of an update carries its progress.
    /// </summary>
    private sealed class Outbox
    {
        public sealed record Entry(IReadOnlyList<MlflowMetric> Metrics, IReadOnlyList<KeyValuePair<string, string>> Tags, string? Status,
            long? EndTime, MlflowRunProgress? Progress);

        private const int MetricsPerEntry = MlflowLimits.EntitiesPerBatch - MlflowLimits.TagsPerBatch;

        private readonly Queue<Entry> entries = new();

        public int Count => entries.Count;

        public int Metrics { get; private set; }

        public void Enqueue(MlflowRunUpdate update)
        {
            var parts = new List<Entry>();
            var metricChunks = update.Metrics.Chunk(MetricsPerEntry).ToList();
            var tagChunks = update.Tags.Chunk(MlflowLimits.TagsPerBatch).ToList();
            for (var i = 0; i < Math.Max(metricChunks.Count, tagChunks.Count); i++)
                parts.Add(new Entry(i < metricChunks.Count ? metricChunks[i] : [], i < tagChunks.Count ? tagChunks[i] : [], null, null, null));
            if (update.Status is not null) parts.Add(new Entry([], [], update.Status, update.EndTime, null));
            if (parts.Count == 0) return;
            parts[^1] = parts[^1] with { Progress = update.Progress };
            foreach (var part in parts)
            {
                entries.Enqueue(part);
                Metrics += part.Metrics.Count;
            }
        }

        public void EnqueueTags(IReadOnlyList<KeyValuePair<string, string>> tags) => entries.Enqueue(new Entry([], tags, null, null, null));

        public bool TryPeek(out Entry entry) => entries.TryPeek(out entry!);

        public Entry Dequeue()
        {
            var entry = entries.Dequeue();
            Metrics -= entry.Metrics.Count;
            return entry;
        }

        public void Clear()
        {
            entries.Clear();
            Metrics = 0;
        }
    }
}
