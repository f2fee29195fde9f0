using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

/// <summary>A command to a run (a RunActor, or <see cref="RunState.Decide"/>).</summary>
public interface IRunCommand;

/// <summary>Start training: the run knows its chunks per epoch and whether it validates.</summary>
public sealed record StartRun(int ChunksPerEpoch, bool HasValidation) : IRunCommand;

/// <summary>
/// A device trained <paramref name="Task"/>: the chunk's mean loss, its minibatch records, and the checkpoint of the
/// run's state after it (null when this chunk is not checkpointed), captured in host memory and not yet durable.
/// </summary>
public sealed record ChunkTrained(RunTask Task, double MeanLoss, IReadOnlyList<MinibatchRecord> Records, CheckpointRef? Checkpoint,
    Akka.Actor.IActorRef? Holder = null) : IRunCommand;

/// <summary>A device ran the validation pass <paramref name="Task"/>; its minibatch records.</summary>
public sealed record ValidationFinished(RunTask Task, IReadOnlyList<MinibatchRecord> Records) : IRunCommand;

/// <summary>The MetricsActor closed an epoch's metrics of one partition (and, for validation, asked <c>HasConverged</c>).</summary>
public sealed record CloseEpochMetrics(Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Metrics, bool Converged) : IRunCommand;

/// <summary>Fail the run.</summary>
public sealed record FailRun(RunFailure Failure) : IRunCommand;

/// <summary>
/// A task of the run failed with a transient native fault (<paramref name="Failure"/>): the run goes back to its newest
/// valid checkpoint (journaling <see cref="RestoredFromCheckpoint"/> when the journal is ahead of it) and reports itself
/// recovered, so that the fit trains the lost chunks again from there. Not a decision of <see cref="RunState"/>: the
/// fit allows one retry per task (<see cref="Experiment.FitState.RetryOnce"/>).
/// </summary>
public sealed record RetryFromCheckpoint(RunTask Task, RunFailure Failure);

/// <summary>Stop the run before it completes; <paramref name="Reason"/> becomes its <c>ended_by</c>.</summary>
public sealed record StopRun(string Reason) : IRunCommand;

/// <summary>Resume a stopped run.</summary>
public sealed record ResumeRun : IRunCommand;

/// <summary>Delete the run: it ends as <see cref="RunStatus.Deleted"/>; its journal stays.</summary>
public sealed record DeleteRun : IRunCommand;

/// <summary>
/// Start a new run as a warm clone of <paramref name="ParentRunId"/> from <paramref name="State"/> (see
/// <see cref="RunState.WarmCloneAs"/>). The copied trained state waits in the pending checkpoints under the state's
/// <see cref="RunState.LastCheckpoint"/>; the run writes it durably before it journals the start. The fit sends it
/// through the parent's actor (<see cref="WarmStartThrough"/>), which adds <paramref name="Records"/>, the records of
/// the epoch so far.
/// </summary>
public sealed record WarmStart(int ParentRunId, RunState State, EpochRecords? Records = null) : IRunCommand;

/// <summary>
/// To a warm clone's parent: add the records of the epoch so far (<see cref="EpochRecords.CloneAs"/>) to
/// <paramref name="Start"/>'s <see cref="WarmStart"/> and send it on to <paramref name="CloneActor"/>.
/// </summary>
public sealed record WarmStartThrough(Controlled Start, Akka.Actor.IActorRef CloneActor);

/// <summary>
/// A command of IC operation <paramref name="OpId"/>: the run carries it out and answers the fit with
/// <see cref="ControlCarriedOut"/> once its events are journaled.
/// </summary>
public sealed record Controlled(int OpId, IRunCommand Command);

/// <summary>The run carried out the command of IC operation <paramref name="OpId"/>: whether it changed anything, and its state after.</summary>
public sealed record ControlCarriedOut(int OpId, bool Changed, RunState State);

/// <summary>
/// A run's state changed: the RunActor tells the fit after every command that changed it, and after it recovered
/// its state from the journal (<paramref name="Recovered"/>: a report it had not journaled yet is lost, and the task
/// behind it must run again). <paramref name="Superseded"/>: journaled after a checkpoint write, while the fit already
/// heard a later state (<see cref="RunAhead"/>); observers see it, the fit keeps the later one.
/// </summary>
public sealed record RunUpdated(RunState State, bool Recovered = false, bool Superseded = false);

/// <summary>
/// A run's state as decided from a task's outcome or an epoch's metrics, before it is journaled: while the journal
/// writes it, or while the checkpoint of a chunk trained in this process is written (the chunk, and what is decided
/// after it, are journaled once the checkpoint is durable). The fit schedules the run's next task from it, so that the
/// device trains or validates meanwhile, and waits for the <see cref="RunUpdated"/> that follows (or, when a write
/// fails, goes back to) for anything that must be durable: IC operations, the fit's end.
/// </summary>
public sealed record RunAhead(RunState State);

/// <summary>
/// Published on the event stream after a run's event is journaled: projections of the journal (the metric files)
/// follow these, so they never hold what the journal does not.
/// </summary>
public sealed record RunJournaled(int RunId, IRunEvent Event);

/// <summary>A pruning rule stopped a run: why, for the experiment's log and console.</summary>
public sealed record RunPruned(int RunId, string Reason);

/// <summary>A run's warning for the experiment's log and console, such as a corrupt checkpoint it fell back from.</summary>
public sealed record RunWarning(int RunId, string Message);
