using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>What the fit reacts to, as <see cref="FitState.Decide"/> takes it: the FitActor's messages, without actor references.</summary>
public abstract record FitInput
{
    /// <summary>The fit starts these runs (and carries out the operations a crash left unresolved as the runs come back).</summary>
    public sealed record Started(RunFit Fit) : FitInput;

    /// <summary>A run journaled a new state (or recovered it, or it is superseded by one the fit already heard).</summary>
    public sealed record Journaled(RunUpdated Update) : FitInput;

    /// <summary>A run decided a new state, which it is journaling: only the scheduling (and pruning) follow it.</summary>
    public sealed record Decided(RunState State) : FitInput;

    /// <summary>A device finished its task.</summary>
    public sealed record Finished(TaskFinished Task) : FitInput;

    /// <summary>The fit is cancelled.</summary>
    public sealed record Cancel : FitInput;

    /// <summary>A task waits for a stalled MLSpec call.</summary>
    public sealed record Stalled(TaskStalled Task) : FitInput;

    /// <summary>An accepted operation is to be carried out.</summary>
    public sealed record Accept(ApplyControl Apply) : FitInput;

    /// <summary>A run journaled an operation.</summary>
    public sealed record CarriedOut(ControlCarriedOut Done) : FitInput;

    /// <summary>The trained state of a warm clone's parent was copied for the clone (see <see cref="FitEffect.CopyWarmState"/>).</summary>
    public sealed record WarmStateCopied(PendingControl Control, RunState Parent, CheckpointRef Key) : FitInput;

    /// <summary>The trained state of a warm clone's parent is neither in memory nor in a checkpoint.</summary>
    public sealed record WarmStateMissing(PendingControl Control, RunState Parent) : FitInput;

    /// <summary>A worker node (or this node, <see cref="FitState.LocalNode"/>) brought devices to the pool.</summary>
    public sealed record Joined(string Worker, IReadOnlyList<string> Devices) : FitInput;

    /// <summary>A worker node left the fit.</summary>
    public sealed record Left(string Worker) : FitInput;

    /// <summary>A durable write failed for want of space.</summary>
    public sealed record OutOfSpace(StorageFull Full) : FitInput;

    /// <summary>The experiment refused an operation the fit asked for itself (<see cref="FitEffect.RequestControl"/>).</summary>
    public sealed record Refused(ControlOutcome Outcome) : FitInput;
}

/// <summary>What the FitActor does for a decision of <see cref="FitState.Decide"/>, in order.</summary>
public abstract record FitEffect
{
    /// <summary>Start the actor of a run of the fit (a clone's, while the fit trains).</summary>
    public sealed record StartRunActor(RunDefinition Run, RunActor.Start Start) : FitEffect;

    /// <summary>Tell run <paramref name="RunId"/>'s actor <paramref name="Command"/>.</summary>
    public sealed record TellRun(int RunId, object Command) : FitEffect;

    /// <summary>Hand a task to its devices.</summary>
    public sealed record Dispatch(Assignment Assignment, Config Config, int ChunksPerEpoch, CheckpointRef? Checkpoint) : FitEffect;

    /// <summary>Cancel the task a device runs.</summary>
    public sealed record CancelDevice(string DeviceId) : FitEffect;

    /// <summary>Publish <paramref name="Event"/> on the event stream, for observers.</summary>
    public sealed record Publish(object Event) : FitEffect;

    /// <summary>Drop the model of a run resting in host memory (it is restored from its checkpoint when it trains again).</summary>
    public sealed record ReleaseModel(int RunId) : FitEffect;

    /// <summary>Drop the MLSpec instances of a run that ended (or of a clone that will not be made).</summary>
    public sealed record ForgetSpec(int RunId) : FitEffect;

    /// <summary>Tell the sender of an operation where it stands; once <paramref name="Resolved"/>, it hears no more.</summary>
    public sealed record Report(ControlOutcome Outcome, bool Resolved = true) : FitEffect;

    /// <summary>
    /// Copy warm clone <paramref name="Control"/>'s parent's trained state at <paramref name="Key"/>'s epoch and chunk
    /// for the clone: from host memory, else from <paramref name="FromCheckpoint"/> (null: there is none of that chunk).
    /// The fit then hears <see cref="FitInput.WarmStateCopied"/> or <see cref="FitInput.WarmStateMissing"/>.
    /// </summary>
    public sealed record CopyWarmState(PendingControl Control, RunState Parent, CheckpointRef Key, CheckpointRef? FromCheckpoint) : FitEffect;

    /// <summary>The fit is over (<paramref name="Interrupted"/>: why it stopped before its runs ended): answer it and stop its actors.</summary>
    public sealed record Complete(string? Interrupted) : FitEffect;

    /// <summary>
    /// Ask the experiment for an automatic IC operation (<see cref="ControlOp.Origin"/> says why): it is checked, journaled
    /// in the IC log and comes back as an <see cref="ApplyControl"/>, as a user's does.
    /// </summary>
    public sealed record RequestControl(ControlOp Op) : FitEffect;
}

/// <summary>A new fit state and what to do for it.</summary>
public sealed record FitDecision(FitState State, IReadOnlyList<FitEffect> Effects);
