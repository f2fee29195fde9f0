using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Persistence;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

// The events of a run's journal: a versioned schema (see Persistence/EventSchema.cs for the manifest of each).
// Change one only by adding a new record with a new manifest; old journals must keep reading.

/// <summary>An event of a run's life, as its journal holds it: values and ids, never tensors or actor refs.</summary>
public interface IRunEvent : IJournaled;

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
public sealed record RestoredFromCheckpoint(RunSnapshot State, string Reason) : IRunEvent;


/// <summary>A stopped run was resumed (a user's IC operation): it continues from where it stopped.</summary>
public sealed record RunResumed : IRunEvent;

/// <summary>
/// A warm clone started: it took <paramref name="ParentRunId"/>'s progress and, in its newest checkpoint, a copy of the
/// parent's trained state at the parent's last finished chunk, with the records of its epoch so far (see
/// <see cref="RunState.WarmCloneAs"/> and <see cref="EpochRecords.CloneAs"/>).
/// </summary>
public sealed record RunWarmStarted(int ParentRunId, RunSnapshot State) : IRunEvent;
