using Akka.Actor;
using RapidFire.Actors.Data;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using static RapidFire.Actors.Data.DataLoaderProtocol;
using RapidFire.Actors.Metrics;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Training;

/// <summary>
/// One device. For a task it swaps the run's model, optimizer and scheduler in, trains the chunk (or validates)
/// on minibatches the DataLoaderActors prepare a bounded number ahead, and swaps the state out to host memory.
/// </summary>
/// <remarks>
/// It runs on its own thread (TorchSharp's dispose scopes and <c>no_grad</c> are thread-local) and handles one
/// minibatch per message, so status queries and a cancel are answered between minibatches.
/// <code>
/// Idle --RunTaskOn--> Working --last minibatch | failure | CancelTask--> [Closing --every follower left-->] Idle
/// Idle --JoinShard--> Following --LeaveShard--> Idle
/// </code>
/// A task on several devices (<see cref="RunTaskOn.Followers"/>) is led by the device it was given to: it holds the
/// run's state, asks the loaders for every shard of each minibatch, hands shard s to follower s, computes shard 0
/// itself, averages the gradients (<see cref="ReplicaSync"/>) and steps; each follower steps its replica when told.
/// When the task ends the leader waits in Closing until every follower has released its replica, so the devices are
/// reported free only once they are. The roles' state lives beside the actor: the task it leads in a
/// <see cref="LeadTask"/> (swapped in and out by <see cref="RunSwap"/>), the one it follows in a
/// <see cref="ShardFollower"/>; every behaviour is a named method.
/// </remarks>
public sealed class GpuActor : ReceiveActor, IWithUnboundedStash
{
    /// <summary>Process the next minibatch of task <paramref name="Serial"/>; at most one is queued at a time.</summary>
    private sealed record ProcessNext(long Serial);

    private readonly DeviceSlot device;
    private readonly TrainingServices services;
    private readonly IActorRef loaders;
    private readonly RunSwap swap;
    private IActorRef requester = ActorRefs.Nobody;
    private long serial;
    private bool nudged;
    private LeadTask? active;
    private ClosingTask? closing;
    private ShardFollower? following;

    /// <inheritdoc />
    public IStash Stash { get; set; } = null!;

    /// <summary>
    /// Props of the actor of <paramref name="device"/>, on its own thread. On a cluster node whose runs' actors are
    /// elsewhere, <paramref name="checkpointHolder"/> writes the captured checkpoints when the runs ask (see
    /// <see cref="Trained.Holder"/>); null when the runs read them from <see cref="TrainingServices.PendingCheckpoints"/>.
    /// </summary>
    public static Props Props(DeviceSlot device, TrainingServices services, IActorRef loaders, IActorRef? checkpointHolder = null) =>
        Akka.Actor.Props.Create(() => new GpuActor(device, services, loaders, checkpointHolder)).WithDispatcher("rapidfire.gpu-dispatcher");

    /// <summary>Creates the actor.</summary>
    public GpuActor(DeviceSlot device, TrainingServices services, IActorRef loaders, IActorRef? checkpointHolder)
    {
        this.device = device;
        this.services = services;
        this.loaders = loaders;
        swap = new RunSwap(services, device, checkpointHolder);
        Idle();
    }

    private void Idle()
    {
        Receive<RunTaskOn>(Start);
        Receive<JoinShard>(Follow);
        Receive<MinibatchReady>(stale => services.Exchange.Discard(stale.Key));
        IgnoreStale();
        Receive<CancelTask>(_ => { });
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(device.Id, null, 0, 0)));
    }

    /// <summary>Reports of a task that has ended: nothing to do.</summary>
    private void IgnoreStale()
    {
        Receive<MinibatchFailed>(_ => { });
        Receive<MinibatchStalled>(_ => { });
        Receive<ProcessNext>(_ => { });
        Receive<ShardComputed>(_ => { });
        Receive<ShardFailed>(_ => { });
        Receive<ShardLeft>(_ => { });
    }

    private void Working()
    {
        Receive<MinibatchReady>(ready =>
        {
            if (ready.Key.TaskSerial != serial) services.Exchange.Discard(ready.Key);
            else
            {
                active!.Arrived(ready.Key.Index, ready.Key.Shard);
                Nudge();
            }
        });
        Receive<ShardComputed>(computed =>
        {
            if (computed.Group != active!.Group) return;
            Guarded(() => active.ShardArrived(computed.Shard, computed.Result, computed.Size));
            if (active is not null && active.StepComplete) Guarded(CompleteStep);
            if (active is not null) Nudge();
        });
        Receive<ShardFailed>(failed =>
        {
            if (failed.Group == active!.Group) End(new Failed(Where(failed.Failure)));
        });
        Receive<ShardLeft>(_ => { });
        Receive<MinibatchFailed>(failed =>
        {
            if (failed.Key.TaskSerial == serial) End(new Failed(Where(failed.Failure)));
        });
        Receive<MinibatchStalled>(stalled =>
        {
            if (stalled.Key.TaskSerial == serial) requester.Tell(new TaskStalled(device.Id, active!.Task, stalled.What));
        });
        Receive<ProcessNext>(next =>
        {
            if (next.Serial != serial) return;
            nudged = false;
            Guarded(ProcessOne);
            if (active is not null) Nudge();
        });
        Receive<CancelTask>(_ => End(new Cancelled()));
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(device.Id, active!.Task, active.Done, active.Minibatches.Count)));
    }

    private void Start(RunTaskOn order)
    {
        requester = Sender;
        serial++;
        nudged = false;
        try
        {
            active = swap.In(order, new ShardGroup(device.Id, serial));
        }
        catch (Exception e)
        {
            var task = order.Task;
            requester.Tell(new TaskFinished(device.Id, task, new Failed(Where(TaskFailures.Named(RunFailureException.Of(e), task.RunId, device.Id), task), RunFailureException.IsTransient(e)), FollowerIds(order)));
            return;
        }
        var followers = order.Followers ?? [];
        for (var f = 0; f < followers.Count; f++) followers[f].Actor.Tell(new JoinShard(active.Group, f + 1, order.Task, order.Config, active.Mode));
        Become(Working);
        RequestAhead();
    }

    private static IReadOnlyList<string>? FollowerIds(RunTaskOn order) => order.Followers is { Count: > 0 } f ? f.Select(d => d.DeviceId).ToList() : null;

    private void ProcessOne()
    {
        var task = active!;
        if (!task.IsReady) return;
        var shards = task.ShardCount(task.Done);
        for (var f = 1; f < shards; f++)
            task.Order.Followers![f - 1].Actor.Tell(new ComputeShard(task.Group, task.Done, Key(task.Done, f)));
        var prepared = services.Exchange.Take(Key(task.Done, 0));
        task.Begin(shards);
        task.ShardArrived(0, task.Compute(prepared), prepared.Batch.Size);
        if (task.StepComplete) CompleteStep();
    }

    /// <summary>Every shard of the minibatch is computed: average the gradients and step (training), then record it.</summary>
    private void CompleteStep()
    {
        var task = active!;
        var (result, size) = task.Finish();
        var record = new MinibatchRecord(task.Task.RunId, task.Mode, task.Task.Epoch, task.Task.Kind == TaskKind.Train ? task.Task.Chunk : 0,
            task.FirstStep + task.Done - 1, (int)size, result.Loss, result.Named, result.Values);
        task.Records.Add(record);
        Context.System.EventStream.Publish(record);
        if (task.Done == task.Minibatches.Count)
        {
            End(task.Task.Kind == TaskKind.Train ? new Trained(task.MeanLoss, task.Timing, task.Records, null) : new Validated(task.Timing, task.Records));
            return;
        }
        RequestAhead();
    }

    /// <summary>
    /// Queues the processing of the next minibatch when it is ready, never more than one such message: whatever
    /// else arrives (a status query, a cancel) waits for one minibatch at most.
    /// </summary>
    private void Nudge()
    {
        if (nudged || !active!.IsReady || active.Stepping) return;
        nudged = true;
        Self.Tell(new ProcessNext(serial));
    }

    /// <summary>Keeps up to <c>prefetch</c> minibatches prepared or in preparation ahead of the trainer.</summary>
    private void RequestAhead()
    {
        var task = active!;
        while (task.Requested < task.Minibatches.Count && task.Requested - task.Done < services.Settings.Prefetch)
        {
            var index = task.Requested++;
            var shards = task.Shards(index);
            for (var s = 0; s < shards.Count; s++)
                loaders.Tell(new PrepareMinibatch(Key(index, s), task.Task.RunId, task.Order.Config, task.Mode, shards[s],
                    s == 0 ? device.TorchDevice : task.Order.Followers![s - 1].TorchDevice));
        }
    }

    /// <summary>
    /// Ends the task: on several devices, the followers release their replicas first (comparing them with the leader's
    /// state when asked) and the task finishes once every one has left.
    /// </summary>
    private void End(TaskOutcome outcome)
    {
        var task = active!;
        active = null;
        for (var i = task.Done; i < task.Requested; i++)
            for (var s = 0; s < task.ShardCount(i); s++) services.Exchange.Discard(Key(i, s));
        var followers = task.Order.Followers ?? [];
        if (followers.Count == 0)
        {
            Finish(task, outcome);
            return;
        }
        var check = outcome is Trained && services.Settings.ChecksReplicas;
        foreach (var follower in followers) follower.Actor.Tell(new LeaveShard(task.Group, check));
        closing = new ClosingTask(task, outcome);
        Become(Closing);
    }

    /// <summary>A task on several devices has ended: the leader waits for every follower to release its replica.</summary>
    private void Closing()
    {
        Receive<ShardLeft>(gone =>
        {
            if (closing!.Left(gone, device.Id) is not { } outcome) return;
            var task = closing.Task;
            services.Leaders.TryRemove(task.Group, out _);
            closing = null;
            Finish(task, outcome);
        });
        Receive<MinibatchReady>(stale => services.Exchange.Discard(stale.Key));
        IgnoreStale();
        Receive<CancelTask>(_ => { });
        Receive<RunTaskOn>(_ => Stash.Stash());
        Receive<JoinShard>(_ => Stash.Stash());
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(device.Id, closing!.Task.Task, closing.Task.Done, closing.Task.Minibatches.Count)));
    }

    /// <summary>Closes the task: checkpoint capture and swap-out (or release, after a failure), then the report.</summary>
    private void Finish(LeadTask task, TaskOutcome outcome)
    {
        outcome = swap.Out(task, outcome);
        requester.Tell(new TaskFinished(device.Id, task.Task, outcome, FollowerIds(task.Order)));
        Become(Idle);
        Stash.UnstashAll();
    }

    /// <summary>Follows a task another device leads: trains its shard of each minibatch on the replica left for it.</summary>
    private void Follow(JoinShard join)
    {
        if (!services.Replicas.TryTake((join.Group, join.Shard), out var replica))
        {
            Sender.Tell(new ShardFailed(join.Group, join.Shard, new RunFailure("runtime", $"no replica of {join.Task} waits for {device.Id}")));
            return;
        }
        var spec = services.Specs.Get(join.Task.RunId, join.Config, join.Mode);
        following = new ShardFollower(join, Sender, replica, new MinibatchTrainer(spec, join.Config), services, device.Id);
        Become(Following);
    }

    /// <summary>A follower stopped with its task (the fit ended) releases the replica it took.</summary>
    protected override void PostStop()
    {
        following?.Dispose();
        following = null;
    }

    private void Following()
    {
        Receive<ComputeShard>(compute =>
        {
            if (following!.Compute(compute) is { } answer) following.Leader.Tell(answer);
        });
        Receive<ApplyStep>(step =>
        {
            if (following!.Step(step) is { } failure) following.Leader.Tell(failure);
        });
        Receive<LeaveShard>(leave =>
        {
            if (following!.Leave(leave) is not { } left) return;
            following.Leader.Tell(left);
            following = null;
            Become(Idle);
            Stash.UnstashAll();
        });
        Receive<RunTaskOn>(_ => Stash.Stash());
        Receive<JoinShard>(_ => Stash.Stash());
        Receive<MinibatchReady>(stale => services.Exchange.Discard(stale.Key));
        IgnoreStale();
        Receive<CancelTask>(_ => { }); // the leader cancels and tells it to leave
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(device.Id, following!.Join.Task, following.Done, 0)));
    }

    private void Guarded(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            if (active is not null) End(new Failed(Where(TaskFailures.Named(RunFailureException.Of(e), active.Task.RunId, device.Id)), RunFailureException.IsTransient(e)));
        }
    }

    private RunFailure Where(RunFailure failure, RunTask? task = null) => TaskFailures.Where(failure, task ?? active?.Task);

    private MinibatchKey Key(int index, int shard) => new(device.Id, serial, index, shard);
}
