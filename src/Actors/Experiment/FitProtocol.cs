using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using static RapidFire.Actors.Experiment.ExperimentProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>Messages of the FitActor.</summary>
public static class FitProtocol
{
    /// <summary>
    /// Train these runs concurrently; answered with <see cref="FitCompleted"/>, or a <see cref="Akka.Actor.Status.Failure"/>
    /// when the fit cannot start. <paramref name="Unresolved"/>: IC operations accepted before a crash that had not
    /// taken effect; they are carried out as the runs come back (a clone among them is created by its operation, not
    /// started with the others). <paramref name="Pruning"/>: the rule that stops runs falling behind (see <see cref="Pruner"/>).
    /// <paramref name="ResumeCancelled"/>: the fit was cancelled (Ctrl+C) and is resumed: the runs the cancel stopped go on.
    /// <paramref name="Rebuilt"/>: the fit's journal was lost; each run listed starts from this state, its newest
    /// checkpoint's (see <see cref="RebuildFit"/>). <paramref name="Fresh"/>: no run of the fit has journaled anything
    /// yet (a new fit, or one rebuilt into an empty journal): the runs recover without asking the snapshot store.
    /// </summary>
    public sealed record RunFit(IReadOnlyList<RunDefinition> Runs, IReadOnlyList<ApplyControl>? Unresolved = null,
        Spec.Configs.PruningRule? Pruning = null, bool ResumeCancelled = false, IReadOnlyDictionary<int, RunSnapshot>? Rebuilt = null,
        bool Fresh = false, Spec.Configs.PbtSettings? Pbt = null);

    /// <summary>
    /// May IC operation <paramref name="OpId"/> be carried out? Answered with <see cref="ControlChecked"/>; nothing
    /// changes yet. <paramref name="NewRunId"/> is the id a clone would get.
    /// </summary>
    public sealed record CheckControl(int OpId, ControlOp Op, int NewRunId);

    /// <summary>The verdict on an operation: the reason it is refused, or (null) accepted, with a clone's new run.</summary>
    public sealed record ControlChecked(int OpId, ControlOp Op, string? Refusal, RunDefinition? NewRun);

    /// <summary>
    /// Carry out an accepted (and journaled) operation: at once when its run is not training, else at the run's next
    /// chunk boundary. The sender hears <see cref="ControlProgress"/>: pending, then applied or dropped.
    /// </summary>
    public sealed record ApplyControl(int OpId, ControlOp Op, RunDefinition? NewRun);

    /// <summary>Where an operation stands now.</summary>
    public sealed record ControlProgress(ControlOutcome Outcome);

    /// <summary>
    /// The fit ended: every run's final state, in run order. <paramref name="Interrupted"/>, when set, says why the
    /// fit stopped before its runs ended (a full disk): nothing more was journaled, its fit stays unfinished, and a
    /// resume continues it from every run's last journaled chunk.
    /// </summary>
    public sealed record FitCompleted(IReadOnlyList<RunState> Runs, bool Cancelled, string? Interrupted = null);

    /// <summary>
    /// A durable write of run <paramref name="RunId"/> (its journal or a checkpoint) failed for want of space in
    /// <paramref name="Folder"/> (null: not a local folder): the fit is interrupted at once, journaling nothing more (see
    /// <see cref="Storage.OutOfSpace"/>). <paramref name="Bytes"/>: the size of the checkpoint that was not written (0:
    /// a journal write).
    /// </summary>
    public sealed record StorageFull(int RunId, string Problem, string? Folder, long Bytes);

    /// <summary>Cancel the fit in progress: tasks in flight are abandoned, unfinished runs are stopped.</summary>
    public sealed record CancelFit;

    /// <summary>Ask for the fit's status; answered with <see cref="FitStatus"/>.</summary>
    public sealed record GetStatus;

    /// <summary>Every run's state and the task each busy device runs.</summary>
    public sealed record FitStatus(IReadOnlyList<RunState> Runs, IReadOnlyDictionary<string, RunTask> Busy, bool Fitting);

    /// <summary>A worker node joined the fit's pool, was left out (the message says why), or left it.</summary>
    public sealed record WorkerChanged(string Worker, string Message);
}
