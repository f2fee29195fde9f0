using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;

namespace RapidFire.Actors.Control;

/// <summary>The words an operation ends with, for the user and the IC log.</summary>
public static class ControlOutcomes
{
    /// <summary>How an operation its run carried out ended: applied (it changed the run, or the run already stood so) or dropped.</summary>
    public static ControlOutcome Of(PendingControl control, bool changed, RunState run)
    {
        var op = control.Op;
        var took = changed || op.Kind switch
        {
            ControlKind.Stop => run.Status == RunStatus.Stopped,
            ControlKind.Resume => run.Status == RunStatus.Ongoing,
            ControlKind.Delete => run.Status == RunStatus.Deleted,
            _ => run.Status != RunStatus.New,
        };
        if (!took)
            return new ControlOutcome(control.OpId, op, ControlStatus.Dropped,
                $"run {run.RunId} is {run.Status}{(run.EndedBy is null ? "" : $" ({run.EndedBy})")}: the operation no longer applies", control.NewRun?.RunId);
        var message = op.Kind switch
        {
            ControlKind.Stop => $"run {run.RunId} stopped after {run.ChunksTrained} chunks ({run.EpochsDone} epochs); resume continues from there",
            ControlKind.Resume => $"run {run.RunId} resumed at {run.Where}",
            ControlKind.Delete => $"run {run.RunId} deleted",
            _ when control.NewRun is { Warm: true } => $"run {run.RunId} created from run {op.RunId}, warm: it continues from run {op.RunId}'s " +
                                                    (run.ChunksTrained == 0 ? "initial state" : $"state after {run.ChunksTrained} chunks, at {run.Where}"),
            _ => $"run {run.RunId} created from run {op.RunId}: it trains from scratch",
        };
        return new ControlOutcome(control.OpId, op, ControlStatus.Applied, message, control.NewRun?.RunId);
    }
}
