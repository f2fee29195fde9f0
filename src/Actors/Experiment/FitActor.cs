using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// One fit of an experiment. It starts a RunActor per config and the MetricsActor, and builds its pool of devices:
/// this node's (a <see cref="Cluster.WorkerFit"/> child with the GpuActors and DataLoaderActors) and, on a cluster,
/// those of every worker node that joins (<see cref="Cluster.WorkerProtocol.JoinFit"/>).
/// </summary>
/// <remarks>
/// <code>
/// Ready --RunFit--> Fitting --every run ended, devices idle, no IC operation left--> Ready
///                        '--CancelFit--> Fitting (cancelling) --> Ready
/// </code>
/// The actor decides nothing itself: every message of a fit becomes a <see cref="FitInput"/> of
/// <see cref="FitState.Decide"/>, and the actor carries out the <see cref="FitEffect"/>s it returns (start a run's
/// actor, tell a run, hand a task to a device, publish, report on an IC operation, end the fit). What it keeps beside
/// the state is only what a pure value cannot hold: the actors of the runs, devices, workers and IC senders. Two
/// things stay here because they are not pure: the check of an IC operation (<see cref="CheckControl"/>), which builds
/// a warm clone's model to compare architectures, and the copy of a warm clone's starting state
/// (<see cref="FitEffect.CopyWarmState"/>) from host memory or a checkpoint.
/// </remarks>
public sealed class FitActor : ReceiveActor
{
    private readonly TrainingServices services;
    private readonly IReadOnlyList<DeviceSlot> devices;
    private readonly Cluster.WorkerProtocol.JoinFit? join;
    private readonly Dictionary<string, string> torchDevices = [];
    private readonly Dictionary<int, IActorRef> runActors = [];
    private readonly Dictionary<string, IActorRef> gpus = [];
    private IActorRef? membership;
    private Cluster.SlowWorkers slow = new();
    private readonly List<IActorRef> fitActors = [];
    private readonly Dictionary<int, IActorRef> controllers = [];
    private FitState fit;
    private IActorRef? requester;
    private IActorRef? metrics;

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

    private const string LocalNode = FitState.LocalNode;

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

    private void Refused(Cluster.WorkerProtocol.FitRefused refused) =>
        Context.System.EventStream.Publish(new WorkerChanged(refused.Worker, $"worker {refused.Worker} left out: {refused.Reason}"));

    private void Fitting()
    {
        Receive<RunUpdated>(updated => Decide(new FitInput.Journaled(updated)));
        // Only the scheduling follows it (and pruning, which decides at the same points, only sooner); the event stream,
        // IC operations and the fit's end wait for the journaled state.
        Receive<RunAhead>(ahead => Decide(new FitInput.Decided(ahead.State)));
        Receive<TaskFinished>(finished =>
        {
            if (fit.Nodes.GetValueOrDefault(finished.DeviceId) is { } node && node != LocalNode &&
                finished.Outcome is Trained { Timing: { Minibatches: > 0 } timing } &&
                slow.Observe(node, finished.Task.RunId, timing.BusySeconds / timing.Minibatches) is { } report)
                Context.System.EventStream.Publish(new WorkerChanged(node, report));
            Decide(new FitInput.Finished(finished));
        });
        Receive<CancelFit>(_ => Decide(new FitInput.Cancel()));
        Receive<StorageFull>(full => Decide(new FitInput.OutOfSpace(full)));
        Receive<TaskStalled>(stalled => Decide(new FitInput.Stalled(stalled)));
        Receive<CheckControl>(check => Sender.Tell(ControlCheck.Verdict(check, fit, services, devices.Count)));
        Receive<ApplyControl>(apply =>
        {
            controllers[apply.OpId] = Sender;
            Decide(new FitInput.Accept(apply));
        });
        Receive<ControlCarriedOut>(done => Decide(new FitInput.CarriedOut(done)));
        // the answers to the operations the fit asked for itself (PBT's clones): only a refusal matters
        Receive<ControlOutcome>(outcome =>
        {
            if (outcome.Status == ControlStatus.Rejected) Decide(new FitInput.Refused(outcome));
        });
        Receive<GetStatus>(_ => Sender.Tell(Status(fitting: true)));
        Receive<RunFit>(_ => Sender.Tell(new Status.Failure(new InvalidOperationException("a fit is already in progress"))));
        Receive<Cluster.WorkerProtocol.FitJoined>(joined =>
        {
            if (joined.Worker != LocalNode) membership?.Tell(new Cluster.FitMembership.Watch(joined.Worker, joined.Host));
            foreach (var device in joined.Devices)
            {
                gpus[device.DeviceId] = device.Gpu;
                torchDevices[device.DeviceId] = device.TorchDevice;
            }
            Decide(new FitInput.Joined(joined.Worker, joined.Devices.Select(d => d.DeviceId).ToList()));
        });
        Receive<Cluster.WorkerProtocol.FitRefused>(Refused);
        Receive<Cluster.FitMembership.WorkerLeft>(left =>
        {
            foreach (var device in fit.Nodes.Where(kv => kv.Value == left.Worker).Select(kv => kv.Key).ToList()) gpus.Remove(device);
            Decide(new FitInput.Left(left.Worker));
        });
    }

    private void Start(RunFit start)
    {
        bool hasValidation;
        int minWorkers;
        try
        {
            if (start.Runs.Count == 0) throw new ArgumentException("the fit has no runs");
            // On a cluster a run asking for more devices than this node has waits for a node that has them.
            if (join is null && start.Runs.Select(r => DataParallel.Problem($"run {r.RunId}", r.Config, devices.Count)).OfType<string>().ToList() is { Count: > 0 } problems)
                throw new ArgumentException(string.Join("; ", problems));
            services.Partition(Mode.Train);
            hasValidation = services.HasPartition(Mode.Validation);
            if (hasValidation) services.Partition(Mode.Validation);
            minWorkers = join is null ? 0 : RuntimeSettings.MinWorkersOf(Context.System.Settings.Config);
        }
        catch (Exception e) when (e is RapidFireException or ArgumentException)
        {
            Sender.Tell(new Status.Failure(e));
            return;
        }

        requester = Sender;
        fit = new FitState([], services.Settings.UsesLocality)
        {
            Pruning = start.Pruning,
            Pbt = start.Pbt,
            MinWorkers = minWorkers,
            TrainRows = services.Partition(Mode.Train).RowCount,
            Chunks = services.Settings.Chunks,
            HasValidation = hasValidation,
        };
        metrics = Track(Context.ActorOf(MetricsActor.Props(services), "metrics"));
        gpus.Clear();
        torchDevices.Clear();
        slow = new Cluster.SlowWorkers();
        // This node's devices join the pool as a worker's do (FitJoined), sharing the fit's services.
        if (devices.Count > 0)
            Track(Context.ActorOf(Cluster.WorkerFit.Props(join?.FitId ?? "local", LocalNode, services, devices, ownsServices: false, Self), "devices"));
        // On a cluster, worker nodes are asked to join as they come up; those that leave take their devices with them.
        membership = join is not null && Cluster.WorkerProtocol.IsClusterNode(Context.System)
            ? Track(Context.ActorOf(Cluster.FitMembership.Props(join, Self), "membership"))
            : null;
        runActors.Clear();
        controllers.Clear();
        foreach (var control in start.Unresolved ?? []) controllers[control.OpId] = Sender;
        Become(Fitting);
        Decide(new FitInput.Started(start));
    }

    /// <summary>Takes <paramref name="input"/> into the fit's state and carries out what it decided.</summary>
    private void Decide(FitInput input) => Execute(fit.Decide(input));

    private void Execute(FitDecision decision)
    {
        fit = decision.State;
        foreach (var effect in decision.Effects)
        {
            if (requester is null) return; // the fit completed
            switch (effect)
            {
                case FitEffect.StartRunActor add:
                    runActors[add.Run.RunId] = Track(Context.ActorOf(
                        RunActor.SupervisedProps(add.Run.RunId, add.Run.Config, Self, metrics!, services, add.Start), $"run-{add.Run.RunId}"));
                    break;
                case FitEffect.TellRun { Command: Controlled { Command: WarmStart warm } start } tell
                    when runActors.TryGetValue(warm.ParentRunId, out var parent):
                    parent.Tell(new WarmStartThrough(start, runActors[tell.RunId])); // it adds the records of its epoch so far
                    break;
                case FitEffect.TellRun tell:
                    runActors[tell.RunId].Tell(tell.Command);
                    break;
                case FitEffect.Dispatch dispatch:
                    var assignment = dispatch.Assignment;
                    var followers = assignment.Followers?.Select(id => new ShardDevice(id, torchDevices[id], gpus[id])).ToList();
                    gpus[assignment.DeviceId].Tell(new RunTaskOn(assignment.Task, dispatch.Config, dispatch.ChunksPerEpoch, dispatch.Checkpoint, followers));
                    break;
                case FitEffect.CancelDevice cancel:
                    if (gpus.TryGetValue(cancel.DeviceId, out var gpu)) gpu.Tell(new CancelTask());
                    break;
                case FitEffect.Publish publish:
                    Context.System.EventStream.Publish(publish.Event);
                    break;
                case FitEffect.ReleaseModel release:
                    services.Models.Release(release.RunId);
                    break;
                case FitEffect.ForgetSpec forget:
                    services.Specs.Remove(forget.RunId);
                    break;
                case FitEffect.Report report:
                    if (controllers.TryGetValue(report.Outcome.OpId, out var controller)) controller.Tell(new ControlProgress(report.Outcome));
                    if (report.Resolved) controllers.Remove(report.Outcome.OpId);
                    break;
                case FitEffect.CopyWarmState copy:
                    Execute(fit.Decide(CopyWarmState(copy)));
                    break;
                case FitEffect.RequestControl request:
                    Context.Parent.Tell(new RequestControl(request.Op));
                    break;
                case FitEffect.Complete complete:
                    End(complete.Interrupted);
                    break;
                default:
                    throw new InvalidOperationException($"the FitActor does not carry out {effect.GetType().Name}");
            }
        }
    }

    /// <summary>
    /// Copies a warm clone's starting state (see <see cref="FitEffect.CopyWarmState"/>): its parent's trained state from
    /// host memory, else from its checkpoint, waiting for the clone's device and its checkpoint write.
    /// </summary>
    private FitInput CopyWarmState(FitEffect.CopyWarmState copy)
    {
        var (control, parent, key) = (copy.Control, copy.Parent, copy.Key);
        var clone = control.NewRun!;
        var payload = services.Models.Capture(parent.RunId);
        if (payload is null && copy.FromCheckpoint is { } last && services.Checkpoints is { } store)
        {
            try
            {
                payload = store.Load(last).Payload.ToArray();
            }
            catch (IOException)
            {
                return new FitInput.WarmStateMissing(control, parent);
            }
        }
        if (payload is null) return new FitInput.WarmStateMissing(control, parent);
        var steps = CheckpointHeader.SchedulerStepsAt(key, parent.ChunksPerEpoch, clone.Config);
        services.PendingCheckpoints.Put(key, payload);
        services.WarmStarts.Put(clone.RunId, new Checkpoint(key,
            new CheckpointHeader(clone.RunId, key.Epoch, key.Chunk, services.SeedOf(clone.Config), steps, DateTimeOffset.UtcNow, ""),
            payload, $"run {parent.RunId}'s state after epoch {key.Epoch + 1} chunk {key.Chunk + 1}"));
        return new FitInput.WarmStateCopied(control, parent, key);
    }

    private IActorRef Track(IActorRef child)
    {
        fitActors.Add(child);
        return child;
    }

    /// <summary>Answers the fit (<paramref name="interrupted"/>: why it stopped before its runs ended), lets the workers go and stops its actors.</summary>
    private void End(string? interrupted)
    {
        requester?.Tell(new FitCompleted(fit.Runs.Values.ToList(), fit.Cancelling, interrupted));
        requester = null;
        // the membership lets the workers go as it stops
        foreach (var child in fitActors) Context.Stop(child);
        fitActors.Clear();
        Become(Ready);
    }

    private FitStatus Status(bool fitting) => new(fit.Runs.Values.ToList(), fit.Busy, fitting);
}
