using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Experiment;

/// <summary>Messages of the ExperimentActor.</summary>
public static class ExperimentProtocol
{
    /// <summary>One run to train: its id (unique in the experiment) and its knobs.</summary>
    public sealed record RunDefinition(int RunId, Config Config);

    /// <summary>Train these runs concurrently; answered with <see cref="FitCompleted"/>, or a <see cref="Akka.Actor.Status.Failure"/> when the fit cannot start.</summary>
    public sealed record StartFit(IReadOnlyList<RunDefinition> Runs);

    /// <summary>The fit ended: every run's final state, in run order.</summary>
    public sealed record FitCompleted(IReadOnlyList<RunState> Runs, bool Cancelled);

    /// <summary>Cancel the fit in progress: tasks in flight are abandoned, unfinished runs are stopped.</summary>
    public sealed record CancelFit;

    /// <summary>Ask for the experiment's status; answered with <see cref="ExperimentStatus"/>.</summary>
    public sealed record GetStatus;

    /// <summary>Every run's state and the task each busy device runs.</summary>
    public sealed record ExperimentStatus(IReadOnlyList<RunState> Runs, IReadOnlyDictionary<string, RunTask> Busy, bool Fitting);
}
