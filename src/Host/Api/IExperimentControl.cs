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

    /// <summary>A run's metrics so far (every minibatch, every closed epoch); null for an unknown run.</summary>
    Task<RunMetrics?> MetricsAsync(int runId, CancellationToken cancellation = default);

    /// <summary>
    /// What happens in the experiment as it happens (run changes, minibatches, closed epochs, IC operations, warnings),
    /// raised on runtime threads: keep handlers short.
    /// </summary>
    event Action<ExperimentEvent>? Progress;
}

/// <summary>One minibatch's numbers (loss, named metrics, tensor metrics), with where it was in its run (1-based).</summary>
/// <param name="Mode">train or validation.</param>
/// <param name="Epoch">The epoch, from 1.</param>
/// <param name="Chunk">The chunk, from 1 (1 in validation).</param>
/// <param name="Step">The minibatch's place in its epoch's pass over the partition, from 1.</param>
/// <param name="Values">Its numbers by name.</param>
public sealed record MinibatchPoint(string Mode, int Epoch, int Chunk, int Step, IReadOnlyDictionary<string, double> Values);

/// <summary>An epoch's closed metrics of one partition.</summary>
/// <param name="Mode">train or validation.</param>
/// <param name="Epoch">The epoch, from 1.</param>
/// <param name="Values">Its metrics by name.</param>
public sealed record EpochPoint(string Mode, int Epoch, IReadOnlyDictionary<string, double> Values);

/// <summary>A run's metrics so far: its minibatches in order, and its closed epochs.</summary>
public sealed record RunMetrics(int RunId, IReadOnlyList<MinibatchPoint> Minibatches, IReadOnlyList<EpochPoint> Epochs);

/// <summary>Every run's latest state, in run order, and whether a fit is in progress.</summary>
public sealed record RunsSnapshot(IReadOnlyList<RunState> Runs, bool Fitting);
