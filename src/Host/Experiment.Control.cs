using Akka.Actor;
using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Host.Api;

namespace RapidFire.Host;

/// <summary>The IC operations on the fit in progress, and the views of its runs, metrics and IC log.</summary>
public sealed partial class Experiment
{
    /// <summary>
    /// Carries out an IC operation on a run of the fit in progress (see <see cref="ControlOp"/>): a run that is training
    /// takes it at its next chunk boundary (the outcome is then <see cref="ControlStatus.Pending"/>), any other at once.
    /// An operation that does not apply comes back <see cref="ControlStatus.Rejected"/> with the reason. Every operation
    /// is journaled and shows in the IC log (<see cref="ControlLogAsync"/>, <c>ic-log.csv</c>).
    /// </summary>
    public async Task<ControlOutcome> ControlAsync(ControlOp op, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return await experiment.Ask<ControlOutcome>(new ExperimentProtocol.RequestControl(op), TimeSpan.FromSeconds(60), cancellation);
    }

    /// <summary>Stops a run at its next chunk boundary; it keeps its progress (see <see cref="ControlAsync"/>).</summary>
    public Task<ControlOutcome> StopRunAsync(int runId) => ControlAsync(ControlOp.Stop(runId));

    /// <summary>Resumes a stopped run from where it stopped.</summary>
    public Task<ControlOutcome> ResumeRunAsync(int runId) => ControlAsync(ControlOp.Resume(runId));

    /// <summary>Deletes a run: it ends and leaves the live views; its journal and files stay.</summary>
    public Task<ControlOutcome> DeleteRunAsync(int runId) => ControlAsync(ControlOp.Delete(runId));

    /// <summary>
    /// Clones a run with some knobs changed (paths such as <c>optimizer.args.lr</c>, values as JSON); with
    /// <paramref name="warm"/>, the clone starts from the parent's model, optimizer and scheduler state at its last
    /// finished chunk. The outcome names the new run.
    /// </summary>
    public Task<ControlOutcome> CloneRunAsync(int runId, IReadOnlyDictionary<string, string> changes, bool warm = false) =>
        ControlAsync(ControlOp.CloneOf(runId, changes, warm));

    /// <summary>A run's metrics so far (every minibatch, every closed epoch), as journaled; null for an unknown run.</summary>
    public async Task<RunMetrics?> MetricsAsync(int runId, CancellationToken cancellation = default)
    {
        var runs = await RunsAsync(cancellation);
        return runs.Runs.Any(r => r.RunId == runId) ? files.Metrics(runId) : null;
    }

    /// <summary>The IC log: every operation asked for in this experiment, oldest first.</summary>
    public async Task<IReadOnlyList<ControlRecord>> ControlLogAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return await experiment.Ask<IReadOnlyList<ControlRecord>>(new ExperimentProtocol.GetControlLog(), TimeSpan.FromSeconds(30), cancellation);
    }

    /// <summary>Every run's latest state: the fit's in progress, else the journal's runs of the last fit as its end left them.</summary>
    public async Task<RunsSnapshot> RunsAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        var status = await experiment.Ask<FitProtocol.FitStatus>(new FitProtocol.GetStatus(), TimeSpan.FromSeconds(30), cancellation);
        if (status.Fitting) return new RunsSnapshot(status.Runs, true);
        return new RunsSnapshot(output.LastRuns(), false);
    }

    /// <summary>Cancels the current operation, if any; its task returns with <see cref="FitResult.Cancelled"/>.</summary>
    public void Cancel() => experiment.Tell(new FitProtocol.CancelFit());
}
