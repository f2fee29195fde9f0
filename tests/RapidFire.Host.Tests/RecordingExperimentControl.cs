using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Spec;

namespace RapidFire.Host.Tests;

/// <summary>
/// An <see cref="IExperimentControl"/> for API and CLI tests: it answers from an in-memory list of runs, records the
/// operations it gets and answers them with the outcome the test scripts (by default: pending).
/// </summary>
internal sealed class RecordingExperimentControl(string path, string name = "exp") : IExperimentControl
{
    private readonly List<ControlOp> ops = [];
    private readonly List<ControlRecord> log = [];

    public string Name { get; } = name;

    public string Path { get; } = path;

    public List<RunState> Runs { get; } = [];

    public bool Fitting { get; set; } = true;

    /// <summary>How an operation is answered (given the op id it gets).</summary>
    public Func<ControlOp, int, ControlOutcome> Answer { get; set; } =
        (op, id) => new ControlOutcome(id, op, ControlStatus.Pending, $"takes effect at run {op.RunId}'s next chunk boundary");

    /// <summary>Thrown by every call when set: an experiment that fails to answer.</summary>
    public Exception? Failure { get; set; }

    public IReadOnlyList<ControlOp> Ops
    {
        get { lock (ops) return ops.ToList(); }
    }

    public Task<RunsSnapshot> RunsAsync(CancellationToken cancellation = default)
    {
        if (Failure is not null) throw Failure;
        lock (ops) return Task.FromResult(new RunsSnapshot(Runs.ToList(), Fitting));
    }

    public Task<ControlOutcome> ControlAsync(ControlOp op, CancellationToken cancellation = default)
    {
        if (Failure is not null) throw Failure;
        lock (ops)
        {
            ops.Add(op);
            var outcome = Answer(op, ops.Count);
            log.Add(new ControlRecord(outcome.OpId, new DateTime(2025, 1, 2, 3, 4, ops.Count, DateTimeKind.Utc), op, outcome.Status, outcome.Message,
                outcome.NewRunId, outcome.Status == ControlStatus.Pending ? null : new DateTime(2025, 1, 2, 3, 5, 0, DateTimeKind.Utc)));
            return Task.FromResult(outcome);
        }
    }

    /// <summary>The metrics each run answers with (a run without an entry has none yet).</summary>
    public Dictionary<int, RunMetrics> Metrics { get; } = [];

    public Task<RunMetrics?> MetricsAsync(int runId, CancellationToken cancellation = default)
    {
        if (Failure is not null) throw Failure;
        lock (ops)
            return Task.FromResult(Metrics.TryGetValue(runId, out var metrics) ? metrics
                : Runs.Any(r => r.RunId == runId) ? new RunMetrics(runId, [], []) : null);
    }

    private Action<ExperimentEvent>? progress;
    private int subscribers;

    public event Action<ExperimentEvent>? Progress
    {
        add { lock (ops) { progress += value; subscribers++; } }
        remove { lock (ops) { progress -= value; subscribers--; } }
    }

    /// <summary>How many handlers are subscribed to <see cref="Progress"/> now.</summary>
    public int Subscribers
    {
        get { lock (ops) return subscribers; }
    }

    /// <summary>Raises <see cref="Progress"/> as the runtime would.</summary>
    public void Raise(ExperimentEvent e)
    {
        Action<ExperimentEvent>? handlers;
        lock (ops) handlers = progress;
        handlers?.Invoke(e);
    }

    public Task<IReadOnlyList<ControlRecord>> ControlLogAsync(CancellationToken cancellation = default)
    {
        if (Failure is not null) throw Failure;
        lock (ops) return Task.FromResult<IReadOnlyList<ControlRecord>>(log.ToList());
    }

    /// <summary>A config with the given hidden size and learning rate (3 epochs, Adam).</summary>
    public static Config ConfigWith(int hidden, double lr) => Config.FromJson(
        $"{{\"hidden\":{hidden},\"epochs\":3,\"batch_size\":32,\"optimizer\":{{\"name\":\"Adam\",\"args\":{{\"lr\":" +
        lr.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "}}}");

    /// <summary>A run that completed its first epoch (train loss 0.5, val accuracy 0.8) and trained one chunk of its second.</summary>
    public static RunState InSecondEpoch(int runId, Config config) => new RunState(runId, config)
        .Apply(new RunStarted(4, true))
        .Apply(new ChunkCompleted(0, 0, 0.9, [], null))
        .Apply(new ChunkCompleted(0, 1, 0.7, [], null))
        .Apply(new ChunkCompleted(0, 2, 0.6, [], null))
        .Apply(new ChunkCompleted(0, 3, 0.5, [], null))
        .Apply(new ValidationCompleted(0, []))
        .Apply(new EpochMetricsRecorded(Mode.Train, 0, new Dictionary<string, double> { ["loss"] = 0.675 }, false))
        .Apply(new EpochMetricsRecorded(Mode.Validation, 0, new Dictionary<string, double> { ["loss"] = 0.6, ["accuracy"] = 0.8 }, false))
        .Apply(new EpochCompleted(0))
        .Apply(new ChunkCompleted(1, 0, 0.4, [], null));

    /// <summary>A run ended with <paramref name="status"/>.</summary>
    public static RunState Ended(RunState run, RunStatus status, string endedBy, RunFailure? failure = null) =>
        run.Apply(new RunEnded(status, endedBy, failure));
}
