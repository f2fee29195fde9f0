using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

/// <summary>A command to a run (a RunActor, or <see cref="RunState.Decide"/>).</summary>
public interface IRunCommand;

/// <summary>An event of a run's life; what a run journal will hold. Primitives and ids only.</summary>
public interface IRunEvent;

/// <summary>Start training: the run knows its chunks per epoch and whether it validates.</summary>
public sealed record StartRun(int ChunksPerEpoch, bool HasValidation) : IRunCommand;

/// <summary>A device trained <paramref name="Task"/>; the chunk's mean loss.</summary>
public sealed record ChunkTrained(RunTask Task, double MeanLoss) : IRunCommand;

/// <summary>A device ran the validation pass <paramref name="Task"/>.</summary>
public sealed record ValidationFinished(RunTask Task) : IRunCommand;

/// <summary>The MetricsActor closed an epoch's metrics of one partition (and, for validation, asked <c>HasConverged</c>).</summary>
public sealed record CloseEpochMetrics(Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Metrics, bool Converged) : IRunCommand;

/// <summary>Fail the run.</summary>
public sealed record FailRun(RunFailure Failure) : IRunCommand;

/// <summary>Stop the run before it completes; <paramref name="Reason"/> becomes its <c>ended_by</c>.</summary>
public sealed record StopRun(string Reason) : IRunCommand;

/// <summary>The run started.</summary>
public sealed record RunStarted(int ChunksPerEpoch, bool HasValidation) : IRunEvent;

/// <summary>A chunk of an epoch was trained.</summary>
public sealed record ChunkCompleted(int Epoch, int Chunk, double MeanLoss) : IRunEvent;

/// <summary>An epoch's validation pass ran.</summary>
public sealed record ValidationCompleted(int Epoch) : IRunEvent;

/// <summary>An epoch's metrics of one partition were closed.</summary>
public sealed record EpochMetricsRecorded(Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Metrics, bool Converged) : IRunEvent;

/// <summary>An epoch completed.</summary>
public sealed record EpochCompleted(int Epoch) : IRunEvent;

/// <summary>The run ended.</summary>
public sealed record RunEnded(RunStatus Status, string EndedBy, RunFailure? Failure) : IRunEvent;

/// <summary>A run's state changed: the RunActor tells the experiment after every command that changed it.</summary>
public sealed record RunUpdated(RunState State);
