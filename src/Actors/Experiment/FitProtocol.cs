using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using static RapidFire.Actors.Experiment.ExperimentProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>Messages of the FitActor.</summary>
public static class FitProtocol
{
    /// <summary>Train these runs concurrently; answered with <see cref="FitCompleted"/>, or a <see cref="Akka.Actor.Status.Failure"/> when the fit cannot start.</summary>
    public sealed record RunFit(IReadOnlyList<RunDefinition> Runs);

    /// <summary>The fit ended: every run's final state, in run order.</summary>
    public sealed record FitCompleted(IReadOnlyList<RunState> Runs, bool Cancelled);

    /// <summary>Cancel the fit in progress: tasks in flight are abandoned, unfinished runs are stopped.</summary>
    public sealed record CancelFit;

    /// <summary>Ask for the fit's status; answered with <see cref="FitStatus"/>.</summary>
    public sealed record GetStatus;

    /// <summary>Every run's state and the task each busy device runs.</summary>
    public sealed record FitStatus(IReadOnlyList<RunState> Runs, IReadOnlyDictionary<string, RunTask> Busy, bool Fitting);
}
