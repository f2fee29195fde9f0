using RapidFire.Spec;

namespace RapidFire.Actors.Experiment;

/// <summary>Messages of the ExperimentActor.</summary>
public static class ExperimentProtocol
{
    /// <summary>One run to train: its id (unique in the experiment) and its knobs.</summary>
    public sealed record RunDefinition(int RunId, Config Config);

    /// <summary>
    /// Start a fit of these configs (run ids follow the experiment's earlier runs). Answered with
    /// <see cref="FitProtocol.FitCompleted"/> when it ends, or a <see cref="Akka.Actor.Status.Failure"/> when it cannot start.
    /// </summary>
    public sealed record StartFit(SpecReference Spec, string DataHandleJson, string DataDirectory, RuntimeSettings Settings,
        IReadOnlyList<Config> Configs);

    /// <summary>Continue the fit a crash interrupted; answered like <see cref="StartFit"/>, or with <see cref="NothingToResume"/>.</summary>
    public sealed record ResumeFit;

    /// <summary>The experiment has no interrupted fit.</summary>
    public sealed record NothingToResume(string Reason);

    /// <summary>Mark the experiment ended (cancelling a fit in progress); answered with <see cref="ExperimentClosed"/>.</summary>
    public sealed record EndExperiment;

    /// <summary>The experiment is ended.</summary>
    public sealed record ExperimentClosed;

    /// <summary>Ask for the journaled state; answered with an <see cref="ExperimentState"/>.</summary>
    public sealed record GetExperiment;

    /// <summary>Published when the experiment's journal cannot be read (the database is unreachable or misconfigured).</summary>
    public sealed record JournalUnavailable(string Experiment, string Reason);
}
