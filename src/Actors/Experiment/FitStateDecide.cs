using System.Collections.Immutable;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Training.GpuProtocol;
using Fx = RapidFire.Actors.Experiment.FitEffect;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// The fit's decisions: <see cref="Decide"/> takes what happened (<see cref="FitInput"/>) and returns the next state and
/// what the FitActor is to do (<see cref="FitEffect"/>), as <see cref="RunState.Decide"/> does for a run.
/// </summary>
public sealed partial record FitState
{
    /// <summary>The worker name of this node's part of the pool.</summary>
    public const string LocalNode = "local";

    /// <summary>The rule that stops runs falling behind (see <see cref="Pruner"/>), or null.</summary>
    public PruningRule? Pruning { get; init; }

    /// <summary>The Population Based Training that steers the runs (see <see cref="PbtPolicy"/>), or null.</summary>
    public PbtSettings? Pbt { get; init; }

    /// <summary>The PBT points decided in this fit (a resumed fit also counts those where a run was replaced).</summary>
    public ImmutableHashSet<int> PbtPoints { get; init; } = [];

    /// <summary>PBT's exploits whose warm clone is asked for and not yet accepted: their parents wait at the point.</summary>
    public ImmutableList<PbtExploit> PbtAwaiting { get; init; } = [];

    /// <summary>The runs PBT replaced: held until their stop is journaled.</summary>
    public ImmutableHashSet<int> PbtReplaced { get; init; } = [];

    /// <summary>The runs the pruning rule has stopped (each is stopped once).</summary>
    public ImmutableHashSet<int> Pruned { get; init; } = [];

    /// <summary>The worker nodes the fit waits for before it trains (<c>rapidfire.cluster.min-workers</c>); 0 once they have joined.</summary>
    public int MinWorkers { get; init; }

    /// <summary>The worker nodes (besides this one) whose devices are in the pool.</summary>
    public ImmutableHashSet<string> Workers { get; init; } = [];

    /// <summary>The rows of the training partition, which with <see cref="Chunks"/> and a run's batch size give its chunks per epoch.</summary>
    public int TrainRows { get; init; }

    /// <summary>The chunks per epoch asked for (fewer when an epoch has fewer minibatches).</summary>
    public int Chunks { get; init; } = 1;

    /// <summary>Whether the data has a validation partition.</summary>
    public bool HasValidation { get; init; }

    /// <summary>The chunks per epoch of a run with <paramref name="cfg"/>.</summary>
    public int ChunksPerEpoch(Config cfg) => EpochPlan.ChunksFor(TrainRows, cfg.BatchSize, Chunks);

    /// <summary>The next state after <paramref name="input"/>, and what to do for it, in order.</summary>
    public FitDecision Decide(FitInput input)
    {
        var fx = new List<Fx>();
        var next = input switch
        {
            FitInput.Started started => Start(started.Fit, fx),
            FitInput.Journaled journaled => Journal(journaled.Update, fx),
            FitInput.Decided decided => WithRun(decided.State, durable: false).Prune(fx).Advance(fx),
            FitInput.Finished finished => Finish(finished.Task, fx),
            FitInput.Cancel => CancelAll(fx),
            FitInput.Stalled stalled => StallOf(stalled.Task, fx),
            FitInput.Accept accept => AcceptOp(accept.Apply, fx).Advance(fx),
            FitInput.CarriedOut done => CarriedOut(done.Done, fx).Advance(fx),
            FitInput.WarmStateCopied copied => WarmStarted(copied, fx).Advance(fx),
            FitInput.WarmStateMissing missing => Drop(missing.Control,
                $"run {missing.Parent.RunId}'s state after its last finished chunk is neither in memory nor in a checkpoint", fx).Advance(fx),
            FitInput.Joined joined => WorkerJoined(joined, fx).Advance(fx),
            FitInput.Left left => WorkerLeft(left.Worker, fx).Advance(fx),
            FitInput.OutOfSpace full => Interrupt(full.Full, fx),
            FitInput.Refused refused => RefusedExploit(refused.Outcome, fx).Prune(fx).Advance(fx),
            _ => throw new ArgumentException($"the fit does not take {input.GetType().Name}", nameof(input)),
        };
        return new FitDecision(next, fx);
    }

    private FitState Start(RunFit start, List<Fx> fx)
    {
        if (MinWorkers > 0)
            fx.Add(new Fx.Publish(new WorkerChanged("", $"the fit waits for {MinWorkers} worker{(MinWorkers == 1 ? "" : "s")} to join before it trains")));
        var unresolved = start.Unresolved ?? [];
        // A clone whose operation had not taken effect is created by that operation, below.
        var created = unresolved.Select(u => u.NewRun?.RunId).OfType<int>().ToHashSet();
        var fit = this;
        foreach (var run in start.Runs.Where(r => !created.Contains(r.RunId)))
        {
            fit = fit.AddRun(run, new RunActor.Start(start.ResumeCancelled, start.Rebuilt?.GetValueOrDefault(run.RunId), start.Fresh), fx);
            fx.Add(new Fx.TellRun(run.RunId, new StartRun(fit.ChunksPerEpoch(run.Config), HasValidation)));
        }
        return unresolved.Aggregate(fit, (f, control) => f.AcceptOp(control, fx));
    }

    private FitState AddRun(RunDefinition run, RunActor.Start start, List<Fx> fx)
    {
        fx.Add(new Fx.StartRunActor(run, start));
        return WithRun(new RunState(run.RunId, run.Config));
    }

    private FitState Journal(RunUpdated updated, List<Fx> fx)
    {
        if (updated.Superseded)
        {
            fx.Add(new Fx.Publish(updated));
            return this;
        }
        var runId = updated.State.RunId;
        var fit = WithRun(updated.State, updated.Recovered);
        // A recovered run's resting model may be ahead of its journal: the next task restores it from a checkpoint.
        if (updated.Recovered && !fit.IsRunning(runId)) fx.Add(new Fx.ReleaseModel(runId));
        fx.Add(new Fx.Publish(updated));
        if (updated.State.IsEnded) fx.Add(new Fx.ForgetSpec(runId));
        if (updated.State.Status == RunStatus.Deleted) fx.Add(new Fx.ReleaseModel(runId));
        return fit.ApplyReady(runId, fx).Prune(fx).Advance(fx);
    }

    private FitState Finish(TaskFinished finished, List<Fx> fx)
    {
        // A worker node's devices publish their minibatches there: observers here see them chunk by chunk.
        if (Nodes.GetValueOrDefault(finished.DeviceId, LocalNode) != LocalNode && finished.Outcome is Trained or Validated)
            foreach (var record in finished.Outcome is Trained t ? t.Records : ((Validated)finished.Outcome).Records)
                fx.Add(new Fx.Publish(record));
        var fit = DeviceFreed(finished.DeviceId);
        fx.Add(new Fx.Publish(finished));
        var task = finished.Task;
        if (finished.Outcome is Cancelled && !fit.Cancelling)
            // A stalled run's task, cancelled for its stop or delete: the chunk is abandoned, the operation applies now.
            return fit.Abandoned(task).ApplyReady(task.RunId, fx).Advance(fx);
        var retry = false;
        if (finished.Outcome is Failed { Transient: true } && !fit.Cancelling) (fit, retry) = fit.RetryOnce(task);
        fx.Add(new Fx.TellRun(task.RunId, finished.Outcome switch
        {
            Trained trained => new ChunkTrained(task, trained.MeanLoss, trained.Records, trained.Checkpoint, trained.Holder),
            Validated validated => new ValidationFinished(task, validated.Records),
            Failed failed when retry => new RetryFromCheckpoint(task, failed.Failure),
            Failed failed => new FailRun(failed.Failure),
            _ => new StopRun(EndReason.Cancelled),
        }));
        return fit.Advance(fx);
    }

    private FitState CancelAll(List<Fx> fx)
    {
        var fit = this with { Cancelling = true };
        fx.AddRange(fit.Busy.Keys.Select(device => new Fx.CancelDevice(device)));
        fx.AddRange(fit.Runs.Values.Where(r => !r.IsEnded).Select(run => new Fx.TellRun(run.RunId, new StopRun(EndReason.Cancelled))));
        fx.AddRange(fit.Pending.Values.SelectMany(p => p).Select(waiting =>
            new Fx.Report(new ControlOutcome(waiting.OpId, waiting.Op, ControlStatus.Dropped, "the fit was cancelled before the operation took effect"))));
        return (fit with { Pending = fit.Pending.Clear() }).Advance(fx);
    }

    private FitState StallOf(TaskStalled stalled, List<Fx> fx)
    {
        var fit = Stall(stalled.Task);
        var runId = stalled.Task.RunId;
        fx.Add(new Fx.Publish(new RunWarning(runId,
            $"run {runId}: {stalled.What} ({stalled.Task}); the other runs go on; a stop or delete of run {runId} abandons its chunk")));
        fit.CancelStalled(runId, fx);
        return fit;
    }

    /// <summary>Cancels a stalled task whose run has a stop or a delete waiting: it would never reach its chunk boundary.</summary>
    private void CancelStalled(int runId, List<Fx> fx) => fx.AddRange(ToCancel(runId).Select(device => new Fx.CancelDevice(device)));

    /// <summary>Queues an accepted operation on its run; it is carried out at once when the run is at a chunk boundary.</summary>
    private FitState AcceptOp(ApplyControl apply, List<Fx> fx)
    {
        var runId = apply.Op.RunId;
        var fit = Queue(new PendingControl(apply.OpId, apply.Op, apply.NewRun));
        if (apply.Op.Replaces is { } replaced)
        {
            fit = fit with { PbtAwaiting = fit.PbtAwaiting.RemoveAll(x => x.Replaced == replaced) };
            if (!fit.PbtReplaced.Contains(replaced) && fit.Runs.TryGetValue(replaced, out var loser) && !loser.IsEnded)
            {
                // the clone that replaces it is accepted: it stops now, at its point, where PBT held it
                fx.Add(new Fx.TellRun(replaced, new StopRun(PbtSettings.EndedBy)));
                fx.Add(new Fx.Publish(new RunPruned(replaced, apply.Op.Origin ?? "")));
                fit = fit with { PbtReplaced = fit.PbtReplaced.Add(replaced) };
            }
        }
        if (!fit.AtBoundary(runId))
        {
            var where = fit.Runs.TryGetValue(runId, out var run) && run.Status != RunStatus.New ? $" (it is training {run.Where})" : " (it is starting)";
            fx.Add(new Fx.Report(new ControlOutcome(apply.OpId, apply.Op, ControlStatus.Pending,
                $"takes effect at run {runId}'s next chunk boundary{where}", apply.NewRun?.RunId), Resolved: false));
        }
        fit = fit.ApplyReady(runId, fx);
        fit.CancelStalled(runId, fx);
        return fit;
    }

    private FitState CarriedOut(ControlCarriedOut done, List<Fx> fx)
    {
        if (!Applying.TryGetValue(done.OpId, out var control)) return this;
        fx.Add(new Fx.Report(ControlOutcomes.Of(control, done.Changed, done.State)));
        return Resolved(done.OpId);
    }

    /// <summary>Carries out the operations waiting on a run that stands at a chunk boundary.</summary>
    private FitState ApplyReady(int runId, List<Fx> fx)
    {
        var (fit, ready) = TakeReady(runId);
        return ready.Aggregate(fit, (f, control) => f.Apply(control, fx));
    }

    private FitState Apply(PendingControl control, List<Fx> fx)
    {
        var op = control.Op;
        var run = Runs[op.RunId];
        var ahead = Applying.Values.Where(p => p.Op.RunId == op.RunId && p.OpId < control.OpId).OrderBy(p => p.OpId).Select(p => p.Op).ToList();
        if (ControlRules.Refusal(op, run, ahead, Runs.Keys.ToList()) is { } moved) return Drop(control, moved, fx);
        switch (op.Kind)
        {
            case ControlKind.Stop:
                fx.Add(new Fx.TellRun(op.RunId, new Controlled(control.OpId, new StopRun(EndReason.User))));
                return this;
            case ControlKind.Resume:
                fx.Add(new Fx.TellRun(op.RunId, new Controlled(control.OpId, new ResumeRun())));
                return this;
            case ControlKind.Delete:
                fx.Add(new Fx.TellRun(op.RunId, new Controlled(control.OpId, new DeleteRun())));
                return this;
            case ControlKind.Clone when control.NewRun is { Warm: true } clone:
                if (run.ChunksTrained == 0) return StartWarmClone(control, run.WarmCloneAs(clone.RunId, clone.Config, null), fx);
                // The parent's state after its last finished chunk: from host memory, else from that chunk's checkpoint.
                var (epoch, chunk) = run.ChunksDone > 0 ? (run.EpochsDone, run.ChunksDone - 1) : (run.EpochsDone - 1, run.ChunksPerEpoch - 1);
                var fromCheckpoint = run.LastCheckpoint is { } last && last.Epoch == epoch && last.Chunk == chunk ? last : null;
                fx.Add(new Fx.CopyWarmState(control, run, new CheckpointRef(clone.RunId, epoch, chunk), fromCheckpoint));
                return this;
            default:
                var added = AddRun(control.NewRun!, new RunActor.Start(Fresh: true), fx);
                fx.Add(new Fx.TellRun(control.NewRun!.RunId, new Controlled(control.OpId, new StartRun(ChunksPerEpoch(control.NewRun.Config), HasValidation))));
                return added;
        }
    }

    private FitState WarmStarted(FitInput.WarmStateCopied copied, List<Fx> fx) =>
        StartWarmClone(copied.Control, copied.Parent.WarmCloneAs(copied.Control.NewRun!.RunId, copied.Control.NewRun.Config, copied.Key), fx);

    /// <summary>A warm clone starts from <paramref name="state"/>: its parent's progress and the checkpoint it copied, if any.</summary>
    private FitState StartWarmClone(PendingControl control, RunState state, List<Fx> fx)
    {
        var clone = control.NewRun!;
        var fit = AddRun(clone, new RunActor.Start(Fresh: true), fx);
        fx.Add(new Fx.TellRun(clone.RunId, new Controlled(control.OpId, new WarmStart(control.Op.RunId, state))));
        return fit;
    }

    private FitState Drop(PendingControl control, string why, List<Fx> fx)
    {
        if (control.NewRun is { } clone) fx.Add(new Fx.ForgetSpec(clone.RunId)); // built when its architecture was checked
        fx.Add(new Fx.Report(new ControlOutcome(control.OpId, control.Op, ControlStatus.Dropped, why, control.NewRun?.RunId)));
        return Resolved(control.OpId);
    }

    /// <summary>
    /// Asks the pruning rule about the runs' metrics so far: it stops the runs that fall behind (at once: they stand at
    /// a chunk boundary, and are held until their stop is journaled) and holds those waiting at a rung.
    /// </summary>
    private FitState Prune(List<Fx> fx)
    {
        if ((Pruning is null && Pbt is null) || Cancelling) return this;
        var fit = this;
        var held = new List<int>();
        if (Pruning is not null)
        {
            var decision = Pruner.Decide(Pruning, Runs.Values);
            var pruned = Pruned;
            foreach (var stop in decision.Stops.Where(s => !pruned.Contains(s.RunId)))
            {
                pruned = pruned.Add(stop.RunId);
                fx.Add(new Fx.TellRun(stop.RunId, new StopRun(Pruning.EndedBy)));
                fx.Add(new Fx.Publish(new RunPruned(stop.RunId, stop.Reason)));
            }
            fit = fit with { Pruned = pruned };
            held.AddRange([.. decision.Held, .. decision.Stops.Select(s => s.RunId)]);
        }
        if (Pbt is not null) fit = fit.Exploit(Pbt, held, fx);
        return fit with { Held = [.. held] };
    }

    /// <summary>
    /// Asks PBT about the runs: at a point the whole population reached, the warm clone of a parent that replaces each
    /// run PBT drops is asked for as an automatic IC operation, and the run is stopped (ended by pbt) once the clone is
    /// accepted (<see cref="AcceptOp"/>); runs waiting at the point, parents and runs waiting for a clone, and runs
    /// being stopped are held.
    /// </summary>
    private FitState Exploit(PbtSettings pbt, List<int> held, List<Fx> fx)
    {
        // a run whose stop for PBT is not journaled yet counts as replaced where it stands (its point is decided); one not
        // recovered yet stands nowhere known, so nothing is decided until it has reported
        var runs = Runs.Values.Select(r => PbtReplaced.Contains(r.RunId) && r is { IsEnded: false, Status: not RunStatus.New }
            ? r with { Status = RunStatus.Stopped, EndedBy = PbtSettings.EndedBy }
            : r);
        var decision = PbtPolicy.Decide(pbt, runs, PbtPoints);
        var fit = this;
        if (decision.Point is { } point)
        {
            fit = fit with { PbtPoints = fit.PbtPoints.Add(point) };
            foreach (var exploit in decision.Exploits)
            {
                fx.Add(new Fx.RequestControl(ControlOp.CloneOf(exploit.Parent, exploit.Changes, warm: true) with
                {
                    Origin = exploit.Reason,
                    Replaces = exploit.Replaced,
                }));
                fit = fit with { PbtAwaiting = fit.PbtAwaiting.Add(exploit) };
            }
        }
        held.AddRange(decision.Held);
        held.AddRange(fit.PbtAwaiting.SelectMany(x => new[] { x.Parent, x.Replaced }));
        held.AddRange(fit.PbtReplaced.Where(id => !fit.Runs[id].IsEnded));
        return fit;
    }

    /// <summary>The experiment refused a clone PBT asked for: its parent goes on, and the refusal is told.</summary>
    private FitState RefusedExploit(ControlOutcome outcome, List<Fx> fx)
    {
        if (outcome.Op.Replaces is not { } replaced) return this;
        fx.Add(new Fx.Publish(new RunWarning(outcome.Op.RunId, $"run {outcome.Op.RunId}: the warm clone that PBT asked for was refused, " +
            $"so run {replaced} goes on: {outcome.Message}")));
        return this with { PbtAwaiting = PbtAwaiting.RemoveAll(x => x.Replaced == replaced) };
    }

    private FitState WorkerJoined(FitInput.Joined joined, List<Fx> fx)
    {
        fx.Add(new Fx.Publish(new WorkerChanged(joined.Worker, $"worker {joined.Worker} joined with {string.Join(", ", joined.Devices)}")));
        var fit = Joined(joined.Worker, joined.Devices);
        return joined.Worker == LocalNode ? fit : fit with { Workers = Workers.Add(joined.Worker) };
    }

    private FitState WorkerLeft(string worker, List<Fx> fx)
    {
        fx.Add(new Fx.Publish(new WorkerChanged(worker, $"worker {worker} left the fit; its tasks in flight are trained again elsewhere")));
        return Left(worker) with { Workers = Workers.Remove(worker) };
    }

    /// <summary>
    /// A durable write failed for want of space: the fit stops now, journaling nothing more. Every run keeps its last
    /// journaled chunk, operations waiting on runs stay pending in the experiment's journal, and the experiment leaves
    /// the fit unfinished: <c>rapidfire resume</c> continues it, as after a crash, once space is freed.
    /// </summary>
    private FitState Interrupt(StorageFull full, List<Fx> fx)
    {
        // Every epoch's end is kept (test and predict choose among them), and so is the newest chunk's.
        var left = Runs.Values.Where(r => !r.IsEnded).Sum(r => Math.Max(0, r.Config.Epochs - r.EpochsDone) + 1);
        var need = full.Bytes > 0
            ? $"; the rest of the fit writes about {Storage.OutOfSpace.Megabytes(full.Bytes * left)} of checkpoints " +
              $"({left} of about {Storage.OutOfSpace.Megabytes(full.Bytes)}: every epoch's end is kept)"
            : "; the journal needs a few MB more";
        fx.Add(new Fx.Complete($"{Storage.OutOfSpace.In(full.Folder)}: {full.Problem}{need}"));
        return this;
    }

    /// <summary>Hands out tasks to free devices, or ends the fit when nothing is left.</summary>
    private FitState Advance(List<Fx> fx)
    {
        // On a cluster told to wait for its workers (rapidfire.cluster.min-workers), nothing starts before they join.
        // Once they have, it goes on whatever leaves.
        var fit = Workers.Count >= MinWorkers ? this with { MinWorkers = 0 } : this;
        if (fit.MinWorkers == 0)
        {
            (fit, var assignments) = fit.Schedule();
            foreach (var assignment in assignments)
            {
                var run = fit.Runs[assignment.Task.RunId];
                fx.Add(new Fx.Dispatch(assignment, run.Config, run.ChunksPerEpoch, run.LastCheckpoint));
            }
        }
        if (fit.IsDone) fx.Add(new Fx.Complete(null));
        return fit;
    }
}
