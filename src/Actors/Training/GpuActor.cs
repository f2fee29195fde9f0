using System.Diagnostics;
using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Data;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using TorchSharp;
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
/// <see cref="LeadTask"/>, the one it follows in a <see cref="ShardFollower"/>; every behaviour is a named method.
/// </remarks>
public sealed class GpuActor : ReceiveActor, IWithUnboundedStash
{
    /// <summary>Process the next minibatch of task <paramref name="Serial"/>; at most one is queued at a time.</summary>
    private sealed record ProcessNext(long Serial);

    private readonly DeviceSlot device;
    private readonly TrainingServices services;
    private readonly IActorRef loaders;
    private readonly IActorRef? checkpointHolder;
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
        this.checkpointHolder = checkpointHolder;
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
        var task = order.Task;
        var cfg = order.Config;
        var mode = task.Kind == TaskKind.Train ? Mode.Train : Mode.Validation;
        RunModel? state = null;
        List<RunModel>? replicas = null;
        try
        {
            var seed = services.SeedOf(cfg);
            var trainSpec = services.Specs.Get(task.RunId, cfg, Mode.Train);
            var spec = services.Specs.Get(task.RunId, cfg, mode);
            var rows = SpecCall.Run("data", () => services.Partition(mode).RowCount);
            var plan = task.Kind == TaskKind.Train
                ? EpochPlan.ForTraining(rows, cfg.BatchSize, services.Settings.Chunks, seed, task.Epoch)
                : EpochPlan.ForEvaluation(rows, cfg.BatchSize);
            state = services.Models.CheckOut(task.RunId, PositionBefore(task, order.ChunksPerEpoch),
                () => Restored(task.RunId, RunModel.Create(trainSpec, cfg, seed), order.Checkpoint));
            var followers = order.Followers ?? [];
            var group = new ShardGroup(device.Id, serial);
            replicas = Replicas(group, task.RunId, followers, trainSpec, cfg, seed, state);
            SpecCall.Run("device", () => state.MoveTo(device.TorchDevice));
            if (task.Kind == TaskKind.Train)
                lock (TorchRandom.Lock) torch.manual_seed(SplitMix64.Mix(seed, task.Epoch, task.Chunk));
            active = new LeadTask(order, mode, state, new MinibatchTrainer(spec, cfg), plan.Chunk(task.Chunk), plan.FirstMinibatch(task.Chunk),
                group, replicas);
            for (var f = 0; f < followers.Count; f++) followers[f].Actor.Tell(new JoinShard(group, f + 1, task, cfg, mode));
        }
        catch (Exception e)
        {
            if (state is not null) services.Models.Release(task.RunId, state);
            ReleaseReplicas(new ShardGroup(device.Id, serial), replicas);
            requester.Tell(new TaskFinished(device.Id, task, new Failed(Where(Named(RunFailureException.Of(e), task.RunId, device.Id), task), RunFailureException.IsTransient(e)), FollowerIds(order)));
            return;
        }
        Become(Working);
        RequestAhead();
    }

    /// <summary>
    /// The followers' replicas of the leader's resting <paramref name="state"/>, each on its follower's device, left in
    /// <see cref="TrainingServices.Replicas"/> for the follower; the leader's state is in <see cref="TrainingServices.Leaders"/>.
    /// </summary>
    private List<RunModel> Replicas(ShardGroup group, int runId, IReadOnlyList<ShardDevice> followers, MLSpec spec, Config cfg, long seed, RunModel state)
    {
        var replicas = new List<RunModel> { state };
        if (followers.Count == 0) return replicas;
        var captured = SpecCall.Run("checkpoint", () => RunStateCodec.Capture(state));
        foreach (var follower in followers)
        {
            try
            {
                replicas.Add(ReplicaSync.Replicate(spec, cfg, seed, captured, follower.TorchDevice));
            }
            catch (Exception e)
            {
                ReleaseReplicas(group, replicas);
                throw new RunFailureException(Named(RunFailureException.Of(e), runId, follower.DeviceId), e);
            }
        }
        for (var s = 1; s < replicas.Count; s++) services.Replicas.Put((group, s), replicas[s]);
        services.Leaders[group] = state;
        return replicas;
    }

    /// <summary>
    /// Disposes the replicas of a task that failed before it began (no follower has taken one yet, handed off or not);
    /// never the leader's state, shard 0.
    /// </summary>
    private void ReleaseReplicas(ShardGroup group, List<RunModel>? replicas)
    {
        if (replicas is null) return;
        for (var s = 1; s < replicas.Count; s++)
        {
            services.Replicas.TryTake((group, s), out _);
            replicas[s].Dispose();
        }
        services.Leaders.TryRemove(group, out _);
        replicas.Clear();
    }

    private static IReadOnlyList<string>? FollowerIds(RunTaskOn order) => order.Followers is { Count: > 0 } f ? f.Select(d => d.DeviceId).ToList() : null;

    /// <summary>
    /// A fresh run state, brought to the trained state a warm clone copied from its parent, or else to its newest
    /// durable checkpoint when it has one (after a resume).
    /// </summary>
    private RunModel Restored(int runId, RunModel fresh, CheckpointRef? checkpoint)
    {
        var warm = services.WarmStarts.TryTake(runId, out var copied) ? copied : null;
        if (warm is null && (checkpoint is null || services.Checkpoints is null)) return fresh;
        try
        {
            SpecCall.Run("checkpoint", () => RunStateCodec.RestoreInto(fresh, warm ?? services.Checkpoints!.Load(checkpoint!)));
            return fresh;
        }
        catch
        {
            fresh.Dispose();
            throw;
        }
    }

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
            var (task, followers) = (closing!.Task, closing.Task.Order.Followers!);
            if (gone.Group != task.Group || !closing.Left.Add(gone.Shard)) return;
            if (gone.Divergence is { } d)
                closing.Divergence ??= $"the replica on {followers[gone.Shard - 1].DeviceId} diverged from the state on {device.Id} " +
                                       $"after {task.Done} minibatches: {d}";
            if (closing.Left.Count < followers.Count) return;
            services.Leaders.TryRemove(task.Group, out _);
            var outcome = closing.Divergence is null ? closing.Outcome : new Failed(Where(new RunFailure("data-parallel", closing.Divergence), task.Task));
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

    /// <summary>A task waiting in <see cref="Closing"/>: its outcome, the followers that have left, the first divergence one reported.</summary>
    private sealed record ClosingTask(LeadTask Task, TaskOutcome Outcome)
    {
        public HashSet<int> Left { get; } = [];
        public string? Divergence { get; set; }
    }

    /// <summary>Closes the task: checkpoint capture and swap-out (or release, after a failure), then the report.</summary>
    private void Finish(LeadTask task, TaskOutcome outcome)
    {
        var state = task.State;
        if (outcome is Trained or Validated)
        {
            var lastOfEpoch = task.Task.Chunk == task.Order.ChunksPerEpoch - 1;
            if (outcome is Trained && lastOfEpoch) state.Scheduler?.step();
            if (outcome is Trained trained && CheckpointAfter(task.Task, lastOfEpoch, state))
            {
                // The swap to host memory is synchronous; the run writes the bytes to disk off this thread.
                var key = new CheckpointRef(task.Task.RunId, task.Task.Epoch, task.Task.Chunk);
                // A capture of the same chunk nobody wrote (its run restarted before it could) is stale: this one replaces it.
                services.PendingCheckpoints.Discard(key);
                services.PendingCheckpoints.Put(key, RunStateCodec.Capture(state));
                state.CheckpointedAt = System.Diagnostics.Stopwatch.GetTimestamp();
                outcome = trained with { Checkpoint = key, Holder = checkpointHolder };
            }
            state.MoveTo("cpu");
            var before = PositionBefore(task.Task, task.Order.ChunksPerEpoch);
            services.Models.CheckIn(task.Task.RunId, state, outcome is Trained ? before + 1 : before);
        }
        else services.Models.Release(task.Task.RunId, state);
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

    /// <summary>
    /// A failure of run <paramref name="runId"/> on <paramref name="deviceId"/>. Running out of device memory says so,
    /// naming the run and the device: the run fails, the others go on.
    /// </summary>
    internal static RunFailure Named(RunFailure failure, int runId, string deviceId) =>
        failure.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) && !failure.Message.StartsWith($"run {runId} ", StringComparison.Ordinal)
            ? failure with { Message = $"run {runId} does not fit on {deviceId} (out of memory): {failure.Message}" }
            : failure;

    /// <summary>
    /// Whether the state after a chunk is checkpointed: as the save strategy says (<c>time</c>: at an epoch's end, and
    /// after a chunk that ends <c>checkpoint-interval</c> or more after the run's last checkpoint); on a cluster node after every chunk,
    /// since the run's next chunk may be trained on another node, which restores it from the store.
    /// </summary>
    private bool CheckpointAfter(RunTask task, bool lastOfEpoch, RunModel state) =>
        services.Checkpoints is not null && task.Kind == TaskKind.Train &&
        (checkpointHolder is not null || services.Settings.SaveStrategy switch
        {
            "chunk" => true,
            "epoch" => lastOfEpoch,
            "time" => lastOfEpoch || System.Diagnostics.Stopwatch.GetElapsedTime(state.CheckpointedAt).TotalSeconds >= services.Settings.CheckpointSeconds,
            _ => false,
        });

    /// <summary>The chunks a run has trained when <paramref name="task"/> starts.</summary>
    private static int PositionBefore(RunTask task, int chunksPerEpoch) =>
        task.Kind == TaskKind.Train ? task.Epoch * chunksPerEpoch + task.Chunk : (task.Epoch + 1) * chunksPerEpoch;

    private void Guarded(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            if (active is not null) End(new Failed(Where(Named(RunFailureException.Of(e), active.Task.RunId, device.Id)), RunFailureException.IsTransient(e)));
        }
    }

    private RunFailure Where(RunFailure failure, RunTask? task = null)
    {
        task ??= active?.Task;
        if (task is null) return failure;
        return failure with
        {
            Mode = failure.Mode ?? (task.Kind == TaskKind.Train ? "train" : "validation"),
            Epoch = failure.Epoch ?? task.Epoch + 1,
            Chunk = failure.Chunk ?? (task.Kind == TaskKind.Train ? task.Chunk + 1 : null),
        };
    }

    private MinibatchKey Key(int index, int shard) => new(device.Id, serial, index, shard);
}
