using Akka.Actor;
using Akka.Routing;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Data;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// One fit of an experiment. It starts a RunActor per config and the MetricsActor, and builds its pool of devices:
/// this node's (a <see cref="Cluster.WorkerFit"/> child with the GpuActors and DataLoaderActors) and, on a cluster,
/// those of every worker node that joins (<see cref="Cluster.WorkerProtocol.JoinFit"/>). Whenever a device is free or
/// a run moves on, it asks the <see cref="SchedulingPolicy"/> for the next (run, epoch, chunk) tasks and hands them
/// out, until every run has ended. A worker that leaves takes its devices with it; its tasks in flight are scheduled
/// again (<see cref="FitState.Left"/>).
/// </summary>
/// <remarks>
/// <code>
/// Ready --RunFit--> Fitting --every run ended, devices idle, no IC operation left--> Ready
///                        '--CancelFit--> Fitting (cancelling) --> Ready
/// </code>
/// IC operations (<see cref="ControlOp"/>) are checked (<see cref="CheckControl"/>, a pure verdict of
/// <see cref="ControlRules"/>), then, once journaled by the experiment, carried out (<see cref="ApplyControl"/>): at
/// once when the run is at a chunk boundary, else when its task in flight is journaled. Each takes effect through
/// the run's own journal (<see cref="Controlled"/>), and the sender hears <see cref="ControlProgress"/>.
/// A run's next task is scheduled from the state it has decided (<see cref="RunAhead"/>) while the run journals it;
/// operations, the event stream and the fit's end follow the journaled state (<see cref="RunUpdated"/>).
/// Run states and device events are published on the event stream (<see cref="RunUpdated"/>,
/// <see cref="TaskFinished"/>) for observers.
/// </remarks>
public sealed class FitActor : ReceiveActor
{
    private readonly TrainingServices services;
    private readonly IReadOnlyList<DeviceSlot> devices;
    private readonly Cluster.WorkerProtocol.JoinFit? join;
    private readonly Dictionary<string, string> torchDevices = [];
    private readonly Dictionary<int, IActorRef> runActors = [];
    private readonly Dictionary<string, IActorRef> gpus = [];
    private readonly Dictionary<IActorRef, string> workers = [];
    private Cluster.SlowWorkers slow = new();
    private int minWorkers;
    private readonly List<IActorRef> fitActors = [];
    private readonly Dictionary<int, IActorRef> controllers = [];
    private FitState fit;
    private IActorRef? requester;
    private IActorRef? metrics;
    private bool hasValidation;
    private PruningRule? pruning;
    private readonly HashSet<int> pruned = [];

    /// <summary>
    /// Props of a fit training on this node's <paramref name="devices"/> and, on a cluster, on the devices of every worker
    /// node (role <c>gpu</c>) that joins when asked with <paramref name="join"/> (null: this node's devices only).
    /// </summary>
    public static Props Props(TrainingServices services, IReadOnlyList<DeviceSlot> devices, Cluster.WorkerProtocol.JoinFit? join = null) =>
        Akka.Actor.Props.Create(() => new FitActor(services, devices, join));

    /// <summary>Creates the actor.</summary>
    public FitActor(TrainingServices services, IReadOnlyList<DeviceSlot> devices, Cluster.WorkerProtocol.JoinFit? join)
    {
        this.services = services;
        this.devices = devices;
        this.join = join;
        fit = new FitState([]);
        Ready();
    }

    /// <summary>The name of this node's part of the pool.</summary>
    private const string LocalNode = "local";

    private void Ready()
    {
        Receive<RunFit>(Start);
        Receive<GetStatus>(_ => Sender.Tell(Status(fitting: false)));
        Receive<CancelFit>(_ => { });
        Receive<CheckControl>(check => Sender.Tell(new ControlChecked(check.OpId, check.Op, "no fit is in progress", null)));
        Receive<ApplyControl>(apply => Sender.Tell(new ControlProgress(
            new ControlOutcome(apply.OpId, apply.Op, ControlStatus.Dropped, "the fit ended before the operation could take effect"))));
        // A worker node that answers after the fit ended: it is not needed.
        Receive<Cluster.WorkerProtocol.FitJoined>(late => late.Host.Tell(new Cluster.WorkerProtocol.LeaveFit(late.FitId)));
        Receive<Cluster.WorkerProtocol.FitRefused>(Refused);
    }

    /// <summary>The name of the worker of this fit whose node is at <paramref name="address"/>, if one is.</summary>
    private string? WorkerAt(Address address) =>
        workers.FirstOrDefault(w => w.Value != LocalNode && w.Key.Path.Address == address).Value;

    private void Refused(Cluster.WorkerProtocol.FitRefused refused) =>
        Context.System.EventStream.Publish(new WorkerChanged(refused.Worker, $"worker {refused.Worker} left out: {refused.Reason}"));

    private void Fitting()
    {
        Receive<RunUpdated>(updated =>
        {
            if (updated.Superseded)
            {
                Context.System.EventStream.Publish(updated);
                return;
            }
            fit = fit.WithRun(updated.State, updated.Recovered);
            // A recovered run's resting model may be ahead of its journal: the next task restores it from a checkpoint.
            if (updated.Recovered && !fit.IsRunning(updated.State.RunId)) services.Models.Release(updated.State.RunId);
            Context.System.EventStream.Publish(updated);
            if (updated.State.IsEnded) services.Specs.Remove(updated.State.RunId);
            if (updated.State.Status == RunStatus.Deleted) services.Models.Release(updated.State.RunId);
            ApplyReady(updated.State.RunId);
            Prune();
            Advance();
        });
        Receive<RunAhead>(ahead =>
        {
            // Only the scheduling follows it (and pruning, which decides at the same points, only sooner); the event
            // stream, IC operations and the fit's end wait for the journaled state.
            fit = fit.WithRun(ahead.State, durable: false);
            Prune();
            Advance();
        });
        Receive<TaskFinished>(finished =>
        {
            // A worker node's devices publish their minibatches there: observers here see them chunk by chunk.
            if (fit.Nodes.GetValueOrDefault(finished.DeviceId, LocalNode) != LocalNode && finished.Outcome is Trained or Validated)
                foreach (var record in finished.Outcome is Trained t ? t.Records : ((Validated)finished.Outcome).Records)
                    Context.System.EventStream.Publish(record);
            if (fit.Nodes.GetValueOrDefault(finished.DeviceId) is { } node && node != LocalNode &&
                finished.Outcome is Trained { Timing: { Minibatches: > 0 } timing } &&
                slow.Observe(node, finished.Task.RunId, timing.BusySeconds / timing.Minibatches) is { } report)
                Context.System.EventStream.Publish(new WorkerChanged(node, report));
            fit = fit.DeviceFreed(finished.DeviceId);
            Context.System.EventStream.Publish(finished);
            if (finished.Outcome is Cancelled && !fit.Cancelling)
            {
                // A stalled run's task, cancelled for its stop or delete: the chunk is abandoned, the operation applies now.
                fit = fit.Abandoned(finished.Task);
                ApplyReady(finished.Task.RunId);
                Advance();
                return;
            }
            var retry = false;
            if (finished.Outcome is Failed { Transient: true } && !fit.Cancelling) (fit, retry) = fit.RetryOnce(finished.Task);
            runActors[finished.Task.RunId].Tell(finished.Outcome switch
            {
                Trained trained => (object)new ChunkTrained(finished.Task, trained.MeanLoss, trained.Records, trained.Checkpoint, trained.Holder),
                Validated validated => new ValidationFinished(finished.Task, validated.Records),
                Failed failed when retry => new RetryFromCheckpoint(finished.Task, failed.Failure),
                Failed failed => new FailRun(failed.Failure),
                _ => new StopRun(EndReason.Cancelled),
            });
            Advance();
        });
        Receive<CancelFit>(_ =>
        {
            fit = fit with { Cancelling = true };
            foreach (var device in fit.Busy.Keys) gpus[device].Tell(new CancelTask());
            foreach (var run in fit.Runs.Values.Where(r => !r.IsEnded)) runActors[run.RunId].Tell(new StopRun(EndReason.Cancelled));
            foreach (var waiting in fit.Pending.Values.SelectMany(p => p))
                Report(new ControlOutcome(waiting.OpId, waiting.Op, ControlStatus.Dropped, "the fit was cancelled before the operation took effect"));
            fit = fit with { Pending = fit.Pending.Clear() };
            Advance();
        });
        Receive<StorageFull>(Interrupt);
        Receive<TaskStalled>(stalled =>
        {
            fit = fit.Stall(stalled.Task);
            Context.System.EventStream.Publish(new RunWarning(stalled.Task.RunId,
                $"run {stalled.Task.RunId}: {stalled.What} ({stalled.Task}); the other runs go on; a stop or delete of run {stalled.Task.RunId} abandons its chunk"));
            CancelStalled(stalled.Task.RunId);
        });
        Receive<CheckControl>(check => Sender.Tell(Check(check)));
        Receive<ApplyControl>(apply =>
        {
            Accept(apply, Sender);
            Advance();
        });
        Receive<ControlCarriedOut>(done =>
        {
            if (fit.Applying.TryGetValue(done.OpId, out var control))
            {
                fit = fit.Resolved(done.OpId);
                Report(ControlOutcomes.Of(control, done.Changed, done.State));
            }
            Advance();
        });
        Receive<GetStatus>(_ => Sender.Tell(Status(fitting: true)));
        Receive<RunFit>(_ => Sender.Tell(new Status.Failure(new InvalidOperationException("a fit is already in progress"))));
        Receive<Cluster.WorkerProtocol.FitJoined>(joined =>
        {
            workers[joined.Host] = joined.Worker;
            if (joined.Worker != LocalNode) Context.Watch(joined.Host);
            foreach (var device in joined.Devices)
            {
                gpus[device.DeviceId] = device.Gpu;
                torchDevices[device.DeviceId] = device.TorchDevice;
            }
            fit = fit.Joined(joined.Worker, joined.Devices.Select(d => d.DeviceId));
            Context.System.EventStream.Publish(new WorkerChanged(joined.Worker, $"worker {joined.Worker} joined with {string.Join(", ", joined.Devices.Select(d => d.DeviceId))}"));
            Advance();
        });
        Receive<Cluster.WorkerProtocol.FitRefused>(Refused);
        Receive<Terminated>(gone =>
        {
            if (!workers.Remove(gone.ActorRef, out var worker)) return;
            foreach (var device in fit.Nodes.Where(kv => kv.Value == worker).Select(kv => kv.Key).ToList()) gpus.Remove(device);
            fit = fit.Left(worker);
            Context.System.EventStream.Publish(new WorkerChanged(worker, $"worker {worker} left the fit; its tasks in flight are trained again elsewhere"));
            Advance();
        });
        Receive<Akka.Cluster.ClusterEvent.UnreachableMember>(lost =>
        {
            if (WorkerAt(lost.Member.Address) is { } worker)
                Context.System.EventStream.Publish(new WorkerChanged(worker, $"worker {worker} is unreachable (a network partition, or its process stopped): " +
                    "its tasks wait for it; if it stays away, the split-brain resolver removes it and its tasks are trained again elsewhere"));
        });
        Receive<Akka.Cluster.ClusterEvent.ReachableMember>(back =>
        {
            if (WorkerAt(back.Member.Address) is { } worker)
                Context.System.EventStream.Publish(new WorkerChanged(worker, $"worker {worker} is reachable again"));
        });
        Receive<Akka.Cluster.ClusterEvent.MemberUp>(up =>
        {
            var self = Akka.Cluster.Cluster.Get(Context.System).SelfAddress;
            if (join is null || up.Member.Address == self || !up.Member.HasRole(Cluster.WorkerProtocol.WorkerRole)) return;
            Context.ActorSelection(new RootActorPath(up.Member.Address) / "user" / Cluster.WorkerProtocol.WorkerName).Tell(join);
        });
    }

    private void Start(RunFit start)
    {
        try
        {
            if (start.Runs.Count == 0) throw new ArgumentException("the fit has no runs");
            // On a cluster a run asking for more devices than this node has waits for a node that has them.
            if (join is null && start.Runs.Select(r => DataParallel.Problem($"run {r.RunId}", r.Config, devices.Count)).OfType<string>().ToList() is { Count: > 0 } problems)
                throw new ArgumentException(string.Join("; ", problems));
            services.Partition(Mode.Train);
            hasValidation = services.HasPartition(Mode.Validation);
            if (hasValidation) services.Partition(Mode.Validation);
        }
        catch (Exception e) when (e is RapidFireException or ArgumentException)
        {
            Sender.Tell(new Status.Failure(e));
            return;
        }

        requester = Sender;
        fit = new FitState([], services.Settings.UsesLocality);
        metrics = Track(Context.ActorOf(MetricsActor.Props(services), "metrics"));
        gpus.Clear();
        torchDevices.Clear();
        workers.Clear();
        slow = new Cluster.SlowWorkers();
        // This node's devices join the pool as a worker's do (FitJoined), sharing the fit's services.
        if (devices.Count > 0)
            Track(Context.ActorOf(Cluster.WorkerFit.Props(join?.FitId ?? "local", LocalNode, services, devices, ownsServices: false, Self), "devices"));
        minWorkers = join is null ? 0 : Context.System.Settings.Config.GetInt("rapidfire.cluster.min-workers", 0);
        if (minWorkers > 0)
            Context.System.EventStream.Publish(new WorkerChanged("", $"the fit waits for {minWorkers} worker{(minWorkers == 1 ? "" : "s")} to join before it trains"));
        if (join is not null && Cluster.WorkerProtocol.IsClusterNode(Context.System))
            Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(Akka.Cluster.ClusterEvent.MemberUp), typeof(Akka.Cluster.ClusterEvent.IReachabilityEvent));
        runActors.Clear();
        controllers.Clear();
        pruning = start.Pruning;
        pruned.Clear();
        var unresolved = start.Unresolved ?? [];
        // A clone whose operation had not taken effect is created by that operation, below.
        var created = unresolved.Select(u => u.NewRun?.RunId).OfType<int>().ToHashSet();
        foreach (var run in start.Runs.Where(r => !created.Contains(r.RunId)))
        {
            AddRun(run, start.ResumeCancelled, start.Rebuilt?.GetValueOrDefault(run.RunId), start.Fresh);
            runActors[run.RunId].Tell(new StartRun(ChunksPerEpoch(run.Config), hasValidation));
        }
        Become(Fitting);
        foreach (var control in unresolved) Accept(control, Sender);
    }

    /// <summary>
    /// Asks the pruning rule about the runs' metrics so far: it stops the runs that fall behind (at once: they stand at
    /// a chunk boundary, and are held until their stop is journaled) and holds those waiting at a rung.
    /// </summary>
    private void Prune()
    {
        if (pruning is null || fit.Cancelling) return;
        var decision = Pruner.Decide(pruning, fit.Runs.Values);
        foreach (var stop in decision.Stops.Where(s => pruned.Add(s.RunId)))
        {
            runActors[stop.RunId].Tell(new StopRun(pruning.EndedBy));
            Context.System.EventStream.Publish(new RunPruned(stop.RunId, stop.Reason));
        }
        fit = fit with { Held = [.. decision.Held, .. decision.Stops.Select(s => s.RunId)] };
    }

    private int ChunksPerEpoch(Config cfg) =>
        EpochPlan.ChunksFor(services.Partition(Mode.Train).RowCount, cfg.BatchSize, services.Settings.Chunks);

    /// <summary>Starts run <paramref name="run"/>'s actor; a clone (added while the fit trains) is always <paramref name="fresh"/>.</summary>
    private void AddRun(RunDefinition run, bool resumeCancelled = false, RunState? rebuilt = null, bool fresh = true)
    {
        fit = fit.WithRun(new RunState(run.RunId, run.Config));
        runActors[run.RunId] = Track(Context.ActorOf(
            RunActor.SupervisedProps(run.RunId, run.Config, Self, metrics!, services, new RunActor.Start(resumeCancelled, rebuilt, fresh)), $"run-{run.RunId}"));
    }

    /// <summary>The verdict on an operation (see <see cref="ControlRules"/>); a warm clone's model is built to compare architectures.</summary>
    private ControlChecked Check(CheckControl check)
    {
        var op = check.Op;
        var run = fit.Runs.GetValueOrDefault(op.RunId);
        var refusal = ControlRules.Refusal(op, run, fit.OpsOn(op.RunId), fit.Runs.Keys.ToList());
        if (refusal is not null || op.Kind != ControlKind.Clone) return new ControlChecked(check.OpId, op, refusal, null);

        Config cfg;
        try
        {
            cfg = ControlRules.CloneConfig(run!.Config, op.Changes ?? new Dictionary<string, string>());
        }
        catch (ConfigException e)
        {
            return new ControlChecked(check.OpId, op, $"the clone's knobs are not valid: {string.Join("; ", e.Problems)}", null);
        }
        if (DataParallel.Problem($"run {check.NewRunId}", cfg, devices.Count) is { } devicesProblem)
            return new ControlChecked(check.OpId, op, $"the clone's knobs are not valid: {devicesProblem}", null);
        if (op.Warm)
        {
            refusal = ControlRules.WarmRefusal(run.RunId, run.Config, cfg);
            if (refusal is null && (op.Changes?.Count ?? 0) > 0)
            {
                try
                {
                    refusal = WarmStartCheck.Architecture(run.RunId, services.Specs.Get(run.RunId, run.Config, Mode.Train), run.Config,
                        services.Specs.Get(check.NewRunId, cfg, Mode.Train), cfg, op.Changes!.Keys);
                }
                catch (Exception e) when (e is RapidFireException or RunFailureException)
                {
                    refusal = $"run {run.RunId}'s model cannot be built to compare with the clone's: {e.Message}";
                }
                if (refusal is not null) services.Specs.Remove(check.NewRunId);
            }
        }
        return new ControlChecked(check.OpId, op, refusal, refusal is null ? new RunDefinition(check.NewRunId, cfg, run.RunId, op.Warm) : null);
    }

    /// <summary>Queues an accepted operation on its run; it is carried out at once when the run is at a chunk boundary.</summary>
    private void Accept(ApplyControl apply, IActorRef controller)
    {
        controllers[apply.OpId] = controller;
        fit = fit.Queue(new PendingControl(apply.OpId, apply.Op, apply.NewRun));
        if (!fit.AtBoundary(apply.Op.RunId))
        {
            var where = fit.Runs.TryGetValue(apply.Op.RunId, out var run) && run.Status != RunStatus.New ? $" (it is training {run.Where})" : " (it is starting)";
            Report(new ControlOutcome(apply.OpId, apply.Op, ControlStatus.Pending,
                $"takes effect at run {apply.Op.RunId}'s next chunk boundary{where}", apply.NewRun?.RunId), resolved: false);
        }
        ApplyReady(apply.Op.RunId);
        CancelStalled(apply.Op.RunId);
    }

    /// <summary>Cancels a stalled task whose run has a stop or a delete waiting: it would never reach its chunk boundary.</summary>
    private void CancelStalled(int runId)
    {
        foreach (var device in fit.ToCancel(runId))
            if (gpus.TryGetValue(device, out var gpu)) gpu.Tell(new CancelTask());
    }

    /// <summary>Carries out the operations waiting on a run that stands at a chunk boundary.</summary>
    private void ApplyReady(int runId)
    {
        var (next, ready) = fit.TakeReady(runId);
        fit = next;
        foreach (var control in ready) Apply(control);
    }

    private void Apply(PendingControl control)
    {
        var op = control.Op;
        var run = fit.Runs[op.RunId];
        var ahead = fit.Applying.Values.Where(p => p.Op.RunId == op.RunId && p.OpId < control.OpId).OrderBy(p => p.OpId).Select(p => p.Op).ToList();
        if (ControlRules.Refusal(op, run, ahead, fit.Runs.Keys.ToList()) is { } moved)
        {
            Drop(control, moved);
            return;
        }
        switch (op.Kind)
        {
            case ControlKind.Stop:
                runActors[op.RunId].Tell(new Controlled(control.OpId, new StopRun(EndReason.User)));
                break;
            case ControlKind.Resume:
                runActors[op.RunId].Tell(new Controlled(control.OpId, new ResumeRun()));
                break;
            case ControlKind.Delete:
                runActors[op.RunId].Tell(new Controlled(control.OpId, new DeleteRun()));
                break;
            case ControlKind.Clone when control.NewRun is { Warm: true } clone:
                if (WarmCopy(run, clone) is not { } state)
                {
                    Drop(control, $"run {run.RunId}'s state after its last finished chunk is neither in memory nor in a checkpoint");
                    return;
                }
                AddRun(clone);
                runActors[clone.RunId].Tell(new Controlled(control.OpId, new WarmStart(run.RunId, state)));
                break;
            case ControlKind.Clone:
                AddRun(control.NewRun!);
                runActors[control.NewRun!.RunId].Tell(new Controlled(control.OpId, new StartRun(ChunksPerEpoch(control.NewRun.Config), hasValidation)));
                break;
        }
    }

    /// <summary>
    /// The state a warm clone starts from: the parent's progress, and a copy of its trained state at its last finished
    /// chunk (from host memory, else its checkpoint) waiting for the clone's device and its checkpoint write. Null
    /// when that state is nowhere to be had.
    /// </summary>
    private RunState? WarmCopy(RunState parent, RunDefinition clone)
    {
        if (parent.ChunksTrained == 0) return parent.WarmCloneAs(clone.RunId, clone.Config, null);
        var (epoch, chunk) = parent.ChunksDone > 0 ? (parent.EpochsDone, parent.ChunksDone - 1) : (parent.EpochsDone - 1, parent.ChunksPerEpoch - 1);
        var payload = services.Models.Capture(parent.RunId);
        if (payload is null && parent.LastCheckpoint is { } last && last.Epoch == epoch && last.Chunk == chunk && services.Checkpoints is { } store)
        {
            try
            {
                payload = store.Load(last).Payload.ToArray();
            }
            catch (IOException)
            {
                return null;
            }
        }
        if (payload is null) return null;
        var key = new CheckpointRef(clone.RunId, epoch, chunk);
        var steps = CheckpointHeader.SchedulerStepsAt(key, parent.ChunksPerEpoch, clone.Config);
        services.PendingCheckpoints[key] = payload;
        services.WarmStarts[clone.RunId] = new Checkpoint(key,
            new CheckpointHeader(clone.RunId, epoch, chunk, services.SeedOf(clone.Config), steps, DateTimeOffset.UtcNow, ""),
            payload, $"run {parent.RunId}'s state after epoch {epoch + 1} chunk {chunk + 1}");
        return parent.WarmCloneAs(clone.RunId, clone.Config, key);
    }

    private void Drop(PendingControl control, string why)
    {
        fit = fit.Resolved(control.OpId);
        if (control.NewRun is { } clone) services.Specs.Remove(clone.RunId); // built when its architecture was checked
        Report(new ControlOutcome(control.OpId, control.Op, ControlStatus.Dropped, why, control.NewRun?.RunId));
    }

    private void Report(ControlOutcome outcome, bool resolved = true)
    {
        if (controllers.TryGetValue(outcome.OpId, out var controller)) controller.Tell(new ControlProgress(outcome));
        if (resolved) controllers.Remove(outcome.OpId);
    }

    private IActorRef Track(IActorRef child)
    {
        fitActors.Add(child);
        return child;
    }

    /// <summary>Hands out tasks to free devices, or ends the fit when nothing is left.</summary>
    private void Advance()
    {
        // On a cluster told to wait for its workers (rapidfire.cluster.min-workers), nothing starts before they join.
        // Once they have, it goes on whatever leaves.
        if (workers.Count(w => w.Value != LocalNode) >= minWorkers) minWorkers = 0;
        var waiting = minWorkers > 0;
        var (next, assignments) = waiting ? (fit, []) : fit.Schedule();
        fit = next;
        foreach (var assignment in assignments)
        {
            var run = fit.Runs[assignment.Task.RunId];
            var followers = assignment.Followers?.Select(id => new ShardDevice(id, torchDevices[id], gpus[id])).ToList();
            gpus[assignment.DeviceId].Tell(new RunTaskOn(assignment.Task, run.Config, run.ChunksPerEpoch, run.LastCheckpoint, followers));
        }
        if (fit.IsDone) End(null);
    }

    /// <summary>
    /// A durable write failed for want of space: the fit stops now, journaling nothing more. Every run keeps its last
    /// journaled chunk, operations waiting on runs stay pending in the experiment's journal, and the experiment leaves
    /// the fit unfinished: <c>rapidfire resume</c> continues it, as after a crash, once space is freed.
    /// </summary>
    private void Interrupt(StorageFull full)
    {
        // Every epoch's end is kept (test and predict choose among them), and so is the newest chunk's.
        var left = fit.Runs.Values.Where(r => !r.IsEnded).Sum(r => Math.Max(0, r.Config.Epochs - r.EpochsDone) + 1);
        var need = full.Bytes > 0
            ? $"; the rest of the fit writes about {Storage.OutOfSpace.Megabytes(full.Bytes * left)} of checkpoints " +
              $"({left} of about {Storage.OutOfSpace.Megabytes(full.Bytes)}: every epoch's end is kept)"
            : "; the journal needs a few MB more";
        End($"{Storage.OutOfSpace.In(full.Folder)}: {full.Problem}{need}");
    }

    /// <summary>Answers the fit (<paramref name="interrupted"/>: why it stopped before its runs ended), lets the workers go and stops its actors.</summary>
    private void End(string? interrupted)
    {
        requester?.Tell(new FitCompleted(fit.Runs.Values.ToList(), fit.Cancelling, interrupted));
        requester = null;
        foreach (var (host, worker) in workers.Where(w => w.Value != LocalNode))
        {
            Context.Unwatch(host);
            host.Tell(new Cluster.WorkerProtocol.LeaveFit(join!.FitId));
        }
        workers.Clear();
        if (join is not null && Cluster.WorkerProtocol.IsClusterNode(Context.System))
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        foreach (var child in fitActors) Context.Stop(child);
        fitActors.Clear();
        Become(Ready);
    }

    private FitStatus Status(bool fitting) => new(fit.Runs.Values.ToList(), fit.Busy, fitting);
}
