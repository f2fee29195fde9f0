using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;

namespace RapidFire.Host.Api;

/// <summary>What the HTTP API and the CLI see of a running experiment: its runs, its IC operations and their log.</summary>
public interface IExperimentControl
{
    /// <summary>The experiment's name.</summary>
    string Name { get; }

    /// <summary>The experiment's folder.</summary>
    string Path { get; }

    /// <summary>Every run's latest state (deleted runs included; views hide them), and whether a fit is in progress.</summary>
    Task<RunsSnapshot> RunsAsync(CancellationToken cancellation = default);

    /// <summary>Carries out an IC operation (see <see cref="ControlOp"/>); a refused one comes back <see cref="ControlStatus.Rejected"/> with the reason.</summary>
    Task<ControlOutcome> ControlAsync(ControlOp op, CancellationToken cancellation = default);

    /// <summary>The IC log: every operation asked for in this experiment, oldest first.</summary>
    Task<IReadOnlyList<ControlRecord>> ControlLogAsync(CancellationToken cancellation = default);
}

/// <summary>Every run's latest state, in run order, and whether a fit is in progress.</summary>
public sealed record RunsSnapshot(IReadOnlyList<RunState> Runs, bool Fitting);
