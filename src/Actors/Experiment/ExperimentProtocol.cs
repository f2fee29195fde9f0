using System.Text.Json.Serialization;
using RapidFire.Spec;

namespace RapidFire.Actors.Experiment;

/// <summary>Messages of the ExperimentActor.</summary>
public static class ExperimentProtocol
{
    /// <summary>
    /// One run to train: its id (unique in the experiment) and its knobs; for a clone, the run it was cloned from and
    /// whether it started warm (from the parent's trained state).
    /// </summary>
    public sealed record RunDefinition(int RunId, Config Config, int? ClonedFrom = null,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool Warm = false);

    /// <summary>
    /// Carry out an IC operation on a run of the fit in progress (see <see cref="Control.ControlOp"/>); answered with a
    /// <see cref="Control.ControlOutcome"/>: rejected, pending (until the run's next chunk boundary) or applied.
    /// </summary>
    public sealed record RequestControl(Control.ControlOp Op);

    /// <summary>Ask for the IC log; answered with the <see cref="Control.ControlRecord"/>s, oldest first.</summary>
    public sealed record GetControlLog;

    /// <summary>
    /// Start a fit of these configs (run ids follow the experiment's earlier runs). Answered with
    /// <see cref="FitProtocol.FitCompleted"/> when it ends, or a <see cref="Akka.Actor.Status.Failure"/> when it cannot start.
    /// </summary>
    public sealed record StartFit(SpecReference Spec, string DataHandleJson, string DataDirectory, RuntimeSettings Settings,
        IReadOnlyList<Config> Configs, Spec.Configs.PruningRule? Pruning = null, Spec.Configs.PbtSettings? Pbt = null);

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

    /// <summary>
    /// What a fit is, outside its journal: its definition and the runs it started with. The host keeps it as
    /// <c>fit.json</c> beside the checkpoints, so that a fit whose journal is lost can be rebuilt from its checkpoints
    /// (<see cref="RebuildFit"/>).
    /// </summary>
    public sealed record FitManifest(FitDefinition Definition, IReadOnlyList<RunDefinition> Runs);

    /// <summary>Published when a fit starts or resumes: its manifest.</summary>
    public sealed record FitDefined(FitManifest Manifest);

    /// <summary>
    /// Rebuild a fit whose journal was lost, into the experiment's new, empty journal: the fit of
    /// <paramref name="Manifest"/> is journaled again and resumed, each run from its state in
    /// <paramref name="States"/> (its newest valid checkpoint's header; a run without one starts over). Answered like
    /// <see cref="StartFit"/>.
    /// </summary>
    public sealed record RebuildFit(FitManifest Manifest, IReadOnlyDictionary<int, Runs.RunSnapshot> States);
}
