using RapidFire.Actors.Checkpoints;
using System.Text.Json.Serialization;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Persistence;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

/// <summary>The life of a run.</summary>
public enum RunStatus
{
    /// <summary>Created, not started.</summary>
    New,
    /// <summary>Training (or waiting for a device).</summary>
    Ongoing,
    /// <summary>Ended normally: its epochs were reached or it converged (see <see cref="RunState.EndedBy"/>).</summary>
    Completed,
    /// <summary>Ended by an error in its MLSpec code or its data (see <see cref="RunState.Failure"/>).</summary>
    Failed,
    /// <summary>Stopped before completing (a cancelled fit, a user's stop or a pruning rule); it keeps its progress and can be resumed.</summary>
    Stopped,
    /// <summary>Deleted by the user: hidden from the live views, kept in the journal.</summary>
    Deleted,
}

/// <summary>Why a run ended, as <c>ended_by</c> reports it.</summary>
public static class EndReason
{
    /// <summary>It trained its <c>epochs</c>.</summary>
    public const string Epochs = "epochs";
    /// <summary><c>HasConverged</c> returned true.</summary>
    public const string Converged = "converged";
    /// <summary>An error failed it.</summary>
    public const string Failure = "failure";
    /// <summary>The fit was cancelled.</summary>
    public const string Cancelled = "cancelled";
    /// <summary>A user's IC operation (stop or delete).</summary>
    public const string User = "user";
}

/// <summary>
/// The state of one run: a pure, immutable value. <see cref="Decide"/> turns a command into events;
/// <see cref="Apply"/> folds an event in. The RunActor only applies, publishes and replies.
/// It is the run's progress, small whatever the epoch's length: its minibatch records are not in it (the RunActor
/// keeps the current epoch's beside it, <see cref="EpochRecords"/>, and the journal holds them all), so the state that
/// every <see cref="RunUpdated"/>, the fit, the API and the dashboard carry does not grow through an epoch.
/// </summary>
/// <remarks>
/// An epoch is a series of chunks, then (with a validation partition) a validation task. It completes when all
/// its chunks are trained and the metrics of its train pass, and of its validation when there is one, are closed;
/// then the run completes if it converged or reached <c>epochs</c>, else its next epoch starts.
/// <code>
/// New --RunStarted--> Ongoing --RunEnded(epochs|converged)--> Completed
///   |                    |------RunEnded(failure)-----------> Failed
///   |                    |------RunEnded(cancelled|user|rule)--> Stopped --RunResumed--> Ongoing
///   |                    '------RunEnded(user)--------------> Deleted   (also from Stopped and Failed)
///   '--RunWarmStarted (a warm clone: the parent's progress and trained state)--> Ongoing
/// </code>
/// </remarks>
public sealed record RunState
{
    /// <summary>A new run of <paramref name="config"/>.</summary>
    public RunState(int runId, Config config)
    {
        RunId = runId;
        Config = config;
    }

    /// <summary>The run's id, 1-based, in config-group order.</summary>
    public int RunId { get; }

    /// <summary>The run's knobs.</summary>
    public Config Config { get; }

    /// <summary>Where the run is in its life.</summary>
    public RunStatus Status { get; init; } = RunStatus.New;

    /// <summary>Why it ended (<see cref="EndReason"/>), once it has.</summary>
    public string? EndedBy { get; init; }

    /// <summary>What failed it, for <see cref="RunStatus.Failed"/>.</summary>
    public RunFailure? Failure { get; init; }

    /// <summary>Chunks per epoch (from the train partition, the batch size and the chunk setting).</summary>
    public int ChunksPerEpoch { get; init; }

    /// <summary>Whether each epoch ends with a validation pass.</summary>
    public bool HasValidation { get; init; }

    /// <summary>The epochs bound: the config's <c>epochs</c>.</summary>
    [JsonIgnore]
    public int MaxEpochs => Config.Epochs;

    /// <summary>Epochs completed.</summary>
    public int EpochsDone { get; init; }

    /// <summary>Chunks trained in the current epoch.</summary>
    public int ChunksDone { get; init; }

    /// <summary>Whether the current epoch's validation pass has run.</summary>
    public bool ValidationDone { get; init; }

    /// <summary>Whether the current epoch's train metrics are closed.</summary>
    public bool TrainClosed { get; init; }

    /// <summary>Whether the current epoch's validation metrics are closed.</summary>
    public bool ValidationClosed { get; init; }

    /// <summary>Whether <c>HasConverged</c> said so after the current epoch's validation.</summary>
    public bool Converged { get; init; }

    /// <summary>
    /// The train metrics of every chunk trained, over all epochs: the examples-weighted mean of each minibatch number
    /// (loss, named metrics, tensor metrics) of the chunk. Pruning over chunks reads them.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>> ChunkMetrics { get; init; } = [];

    /// <summary>Whether a user resumed the run after it was stopped: pruning rules leave it alone from then on.</summary>
    public bool ResumedByUser { get; init; }

    /// <summary>The mean train loss of the last chunk trained.</summary>
    public double? LastTrainLoss { get; init; }

    /// <summary>The newest durable checkpoint of the run's trainable state.</summary>
    public CheckpointRef? LastCheckpoint { get; init; }

    /// <summary>Chunks trained in all, over every epoch: what a checkpoint of the current state must hold.</summary>
    [JsonIgnore]
    public int ChunksTrained => EpochsDone * ChunksPerEpoch + ChunksDone;

    /// <summary>The epoch-level train metrics, one dictionary per completed epoch.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>> TrainHistory { get; init; } = [];

    /// <summary>The epoch-level validation metrics, one dictionary per completed epoch.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>> ValidationHistory { get; init; } = [];

    /// <summary>Whether the run has ended (completed, failed, stopped or deleted).</summary>
    [JsonIgnore]
    public bool IsEnded => Status is RunStatus.Completed or RunStatus.Failed or RunStatus.Stopped or RunStatus.Deleted;

    /// <summary>The run's next task; null when it waits for an epoch's metrics or has ended.</summary>
    [JsonIgnore]
    public RunTask? NextTask =>
        Status != RunStatus.Ongoing ? null
        : ChunksDone < ChunksPerEpoch ? RunTask.Train(RunId, EpochsDone, ChunksDone)
        : HasValidation && !ValidationDone ? RunTask.Validate(RunId, EpochsDone)
        : null;

    /// <summary>What the scheduling policy sees of the run.</summary>
    [JsonIgnore]
    public RunProgress Progress => new(RunId, EpochsDone, ChunksDone, NextTask, DataParallel.Requested(Config));

    /// <summary>The events a command leads to (none when it does not apply in this state).</summary>
    public IReadOnlyList<IRunEvent> Decide(IRunCommand command)
    {
        switch (command)
        {
            case StartRun start when Status == RunStatus.New:
                return [new RunStarted(start.ChunksPerEpoch, start.HasValidation)];
            case ChunkTrained trained when NextTask == trained.Task:
                return [new ChunkCompleted(trained.Task.Epoch, trained.Task.Chunk, trained.MeanLoss, trained.Records, trained.Checkpoint)];
            case ValidationFinished finished when NextTask == finished.Task:
                return [new ValidationCompleted(finished.Task.Epoch, finished.Records)];
            case CloseEpochMetrics closed when Status == RunStatus.Ongoing && closed.Epoch == EpochsDone && AwaitsMetrics(closed.Mode):
                var recorded = new EpochMetricsRecorded(closed.Mode, closed.Epoch, closed.Metrics, closed.Converged);
                return [recorded, .. AfterEpochMetrics(Apply(recorded))];
            case FailRun fail when !IsEnded:
                return [new RunEnded(RunStatus.Failed, EndReason.Failure, fail.Failure)];
            case StopRun stop when !IsEnded:
                return [new RunEnded(RunStatus.Stopped, stop.Reason, null)];
            case ResumeRun when Status == RunStatus.Stopped && ChunksPerEpoch > 0: // one stopped before it started has nothing to resume
                return [new RunResumed()];
            case DeleteRun when Status is RunStatus.New or RunStatus.Ongoing or RunStatus.Stopped or RunStatus.Failed:
                return [new RunEnded(RunStatus.Deleted, EndReason.User, Failure)];
            case WarmStart warm when Status == RunStatus.New:
                return [new RunWarmStarted(warm.ParentRunId, new RunSnapshot(warm.State, warm.Records ?? EpochRecords.Empty))];
            default:
                return [];
        }
    }

    /// <summary>
    /// Whether the current epoch waits for its <paramref name="mode"/> metrics: its pass is done and they are not closed
    /// yet. An answer that comes twice (asked again after a recovery) or for a pass that was undone (a checkpoint lost
    /// while the metrics were closed) is ignored.
    /// </summary>
    private bool AwaitsMetrics(Mode mode) => mode == Mode.Train
        ? ChunksDone == ChunksPerEpoch && !TrainClosed
        : ValidationDone && !ValidationClosed;

    private static IEnumerable<IRunEvent> AfterEpochMetrics(RunState next)
    {
        var epochReady = next.ChunksDone == next.ChunksPerEpoch && next.TrainClosed &&
                         (!next.HasValidation || (next.ValidationDone && next.ValidationClosed));
        if (!epochReady) yield break;
        yield return new EpochCompleted(next.EpochsDone);
        if (next.Converged) yield return new RunEnded(RunStatus.Completed, EndReason.Converged, null);
        else if (next.EpochsDone + 1 >= next.MaxEpochs) yield return new RunEnded(RunStatus.Completed, EndReason.Epochs, null);
    }

    /// <summary>The state after <paramref name="e"/>.</summary>
    public RunState Apply(IRunEvent e) => e switch
    {
        RunStarted s => this with { Status = RunStatus.Ongoing, ChunksPerEpoch = s.ChunksPerEpoch, HasValidation = s.HasValidation },
        ChunkCompleted c => this with
        {
            ChunksDone = ChunksDone + 1,
            LastTrainLoss = c.MeanLoss,
            ChunkMetrics = [.. ChunkMetrics, MeanNumbers(c.Records)],
            LastCheckpoint = c.Checkpoint ?? LastCheckpoint,
        },
        ValidationCompleted => this with { ValidationDone = true },
        EpochMetricsRecorded { Mode: Mode.Train } m => this with { TrainClosed = true, TrainHistory = [.. TrainHistory, m.Metrics] },
        EpochMetricsRecorded m => this with
        {
            ValidationClosed = true,
            Converged = m.Converged,
            ValidationHistory = [.. ValidationHistory, m.Metrics],
        },
        EpochCompleted => this with
        {
            EpochsDone = EpochsDone + 1,
            ChunksDone = 0,
            ValidationDone = false,
            TrainClosed = false,
            ValidationClosed = false,
        },
        RestoredFromCheckpoint restored => restored.State.Run,
        RunEnded end => this with { Status = end.Status, EndedBy = end.EndedBy, Failure = end.Failure },
        RunResumed => this with { Status = RunStatus.Ongoing, EndedBy = null, ResumedByUser = true },
        RunWarmStarted warm => warm.State.Run,
        _ => throw new ArgumentOutOfRangeException(nameof(e), e, "unknown run event"),
    };

    /// <summary>
    /// The state a warm clone starts from: this run's progress (epochs, chunks, the metric histories) under the clone's
    /// id and knobs, ongoing, with <paramref name="checkpoint"/> (the copy of this run's trained state, filed under the
    /// clone) as its newest checkpoint. The current epoch's records follow from the run's actor
    /// (<see cref="EpochRecords.CloneAs"/>).
    /// </summary>
    public RunState WarmCloneAs(int runId, Config config, CheckpointRef? checkpoint) => new RunState(runId, config)
    {
        Status = RunStatus.Ongoing,
        ChunksPerEpoch = ChunksPerEpoch,
        HasValidation = HasValidation,
        EpochsDone = EpochsDone,
        ChunksDone = ChunksDone,
        ValidationDone = ValidationDone,
        TrainClosed = TrainClosed,
        ValidationClosed = ValidationClosed,
        LastTrainLoss = LastTrainLoss,
        TrainHistory = TrainHistory,
        ValidationHistory = ValidationHistory,
        ChunkMetrics = ChunkMetrics,
        LastCheckpoint = checkpoint,
    };

    /// <summary>The examples-weighted mean of each number of <paramref name="records"/> (see <see cref="MinibatchRecord.Numbers"/>).</summary>
    private static IReadOnlyDictionary<string, double> MeanNumbers(IReadOnlyList<MinibatchRecord> records)
    {
        var sums = new Dictionary<string, (double Sum, long Weight)>();
        foreach (var record in records)
            foreach (var (name, value) in record.Numbers())
            {
                var (sum, weight) = sums.GetValueOrDefault(name);
                sums[name] = (sum + value * record.Examples, weight + record.Examples);
            }
        return sums.ToDictionary(kv => kv.Key, kv => kv.Value.Weight == 0 ? double.NaN : kv.Value.Sum / kv.Value.Weight);
    }

    /// <summary>A one-line progress description: <c>epoch 2/3 chunk 1/4</c>, <c>epoch 2/3 validating</c>...</summary>
    [JsonIgnore]
    public string Where => Status switch
    {
        RunStatus.New => "-",
        _ when IsEnded => $"{EpochsDone}/{MaxEpochs} epochs",
        _ when ChunksDone < ChunksPerEpoch => $"epoch {EpochsDone + 1}/{MaxEpochs} chunk {ChunksDone + 1}/{ChunksPerEpoch}",
        _ when HasValidation && !ValidationClosed => $"epoch {EpochsDone + 1}/{MaxEpochs} validating",
        _ => $"epoch {EpochsDone + 1}/{MaxEpochs} closing",
    };
}
