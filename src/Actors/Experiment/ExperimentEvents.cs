using RapidFire.Actors.Control;
using RapidFire.Actors.Persistence;

namespace RapidFire.Actors.Experiment;

// The events of an experiment's journal: a versioned schema (manifests in Persistence/EventSchema.cs).
// Change one only by adding a new record with a new manifest; old journals must keep reading.

/// <summary>An event of an experiment, as its journal holds it.</summary>
public interface IExperimentEvent : IJournaled;

/// <summary>The experiment was created.</summary>
public sealed record ExperimentCreated(string Name, DateTime CreatedUtc) : IExperimentEvent;

/// <summary>A fit started: what to train with (spec, data, settings).</summary>
public sealed record FitStarted(FitDefinition Definition) : IExperimentEvent;

/// <summary>Runs were added to a fit, each with its config.</summary>
public sealed record RunsAdded(int FitId, IReadOnlyList<ExperimentProtocol.RunDefinition> Runs) : IExperimentEvent;

/// <summary>A fit ended: every run ended, or it was cancelled.</summary>
public sealed record FitEnded(int FitId, bool Cancelled) : IExperimentEvent;

/// <summary>The experiment was ended: its artifacts stay, nothing more runs in it.</summary>
public sealed record ExperimentEnded(DateTime EndedUtc) : IExperimentEvent;

/// <summary>
/// An IC operation was asked for during fit <paramref name="FitId"/>, with its id in the IC log; an accepted clone
/// brings its new run (<paramref name="NewRun"/>), which joins the fit.
/// </summary>
public sealed record ControlRequested(int OpId, DateTime RequestedUtc, ControlOp Op, int FitId, ExperimentProtocol.RunDefinition? NewRun) : IExperimentEvent;

/// <summary>An IC operation was rejected, applied or dropped (see <see cref="ControlStatus"/>), with the message for the user.</summary>
public sealed record ControlResolved(int OpId, DateTime ResolvedUtc, ControlStatus Status, string Outcome) : IExperimentEvent;

/// <summary>What a fit trains with, as the journal keeps it for a resume.</summary>
/// <param name="FitId">The fit's number in the experiment, from 1.</param>
/// <param name="Spec">The MLSpec.</param>
/// <param name="DataHandleJson">The data handle, as JSON with paths relative to <paramref name="DataDirectory"/>.</param>
/// <param name="DataDirectory">The folder the data handle's paths are relative to.</param>
/// <param name="Settings">The runtime settings of the fit.</param>
/// <param name="Pruning">The config group's pruning rule, if it has one.</param>
/// <param name="Pbt">The config group's Population Based Training, if it has one (resample options filled in).</param>
public sealed record FitDefinition(int FitId, SpecReference Spec, string DataHandleJson, string DataDirectory, RuntimeSettings Settings,
    Spec.Configs.PruningRule? Pruning = null, Spec.Configs.PbtSettings? Pbt = null);
