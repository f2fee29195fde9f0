using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

/// <summary>A command to a run (a RunActor, or <see cref="RunState.Decide"/>).</summary>
public interface IRunCommand;

/// <summary>An event of a run's life; what a run journal will hold. Primitives and ids only.</summary>
public interface IRunEvent;

/// <summary>Start training: the run knows its chunks per epoch and whether it validates.</summary>
public sealed record StartRun(int ChunksPerEpoch, bool HasValidation) : IRunCommand;

/// <summary>
/// A device trained <paramref name="Task"/>: the chunk's mean loss, its minibatch records, and the checkpoint of the
/// run's state after it (null when this chunk is not checkpointed), captured in host memory and not yet durable.
/// </summary>
public sealed record ChunkTrained(RunTask Task, double MeanLoss, IReadOnlyList<MinibatchRecord> Records, CheckpointRef? Checkpoint) : IRunCommand;

/// <summary>A device ran the validation pass <paramref name="Task"/>; its minibatch records.</summary>
public sealed record ValidationFinished(RunTask Task, IReadOnlyList<MinibatchRecord> Records) : IRunCommand;

/// <summary>The MetricsActor closed an epoch's metrics of one partition (and, for validation, asked <c>HasConverged</c>).</summary>
public sealed record CloseEpochMetrics(Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Metrics, bool Converged) : IRunCommand;

/// <summary>Fail the run.</summary>
public sealed record FailRun(RunFailure Failure) : IRunCommand;

/// <summary>Stop the run before it completes; <paramref name="Reason"/> becomes its <c>ended_by</c>.</summary>
public sealed record StopRun(string Reason) : IRunCommand;

/// <summary>The run started.</summary>
public sealed record RunStarted(int ChunksPerEpoch, bool HasValidation) : IRunEvent;

/// <summary>A chunk of an epoch was trained: its mean loss, minibatch records and (durable) checkpoint.</summary>
public sealed record ChunkCompleted(int Epoch, int Chunk, double MeanLoss, IReadOnlyList<MinibatchRecord> Records, CheckpointRef? Checkpoint) : IRunEvent;

/// <summary>An epoch's validation pass ran: its minibatch records.</summary>
public sealed record ValidationCompleted(int Epoch, IReadOnlyList<MinibatchRecord> Records) : IRunEvent;

/// <summary>An epoch's metrics of one partition were closed.</summary>
public sealed record EpochMetricsRecorded(Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Metrics, bool Converged) : IRunEvent;

/// <summary>An epoch completed.</summary>
public sealed record EpochCompleted(int Epoch) : IRunEvent;

/// <summary>The run ended.</summary>
public sealed record RunEnded(RunStatus Status, string EndedBy, RunFailure? Failure) : IRunEvent;

/// <summary>
/// On recovery the run went back to the state a checkpoint holds (the journal was ahead of the last durable
/// checkpoint, or that checkpoint was corrupt): the chunks after it are trained again and their records replaced.
/// </summary>
public sealed record RestoredFromCheckpoint(RunState State, string Reason) : IRunEvent;

/// <summary>A run's state changed: the RunActor tells the experiment after every command that changed it.</summary>
public sealed record RunUpdated(RunState State);
