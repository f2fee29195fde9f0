using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using TorchSharp;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Training;

/// <summary>
/// A device's swap of a run's state for a task it leads (see <see cref="GpuActor"/>): in, the run's model, optimizer
/// and scheduler checked out of host memory (or restored from a warm start or a checkpoint), replicated for the
/// followers, moved to the device and the RNG seeded for the chunk; out, the scheduler stepped at an epoch's end, the
/// checkpoint captured to host memory when the save strategy asks, and the state checked back in. A plain class.
/// </summary>
internal sealed class RunSwap(TrainingServices services, DeviceSlot device, IActorRef? checkpointHolder)
{
    /// <summary>The task <paramref name="order"/> ready to run as <paramref name="group"/>; a failure releases what it took and throws.</summary>
    public LeadTask In(RunTaskOn order, ShardGroup group)
    {
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
            replicas = Replicas(group, task.RunId, order.Followers ?? [], trainSpec, cfg, seed, state);
            var onDevice = state;
            SpecCall.Run("device", () => onDevice.MoveTo(device.TorchDevice));
            if (task.Kind == TaskKind.Train)
                lock (TorchRandom.Lock) torch.manual_seed(SplitMix64.Mix(seed, task.Epoch, task.Chunk));
            return new LeadTask(order, mode, state, new MinibatchTrainer(spec, cfg), plan.Chunk(task.Chunk), plan.FirstMinibatch(task.Chunk),
                group, replicas);
        }
        catch
        {
            if (state is not null) services.Models.Release(task.RunId, state);
            ReleaseReplicas(group, replicas);
            throw;
        }
    }

    /// <summary>
    /// The task has ended with <paramref name="outcome"/>: its state goes back to host memory (or is released after a
    /// failure); returns the outcome, with the captured checkpoint when one was taken.
    /// </summary>
    public TaskOutcome Out(LeadTask task, TaskOutcome outcome)
    {
        var state = task.State;
        if (outcome is not (Trained or Validated))
        {
            services.Models.Release(task.Task.RunId, state);
            return outcome;
        }
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
        return outcome;
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
                throw new RunFailureException(TaskFailures.Named(RunFailureException.Of(e), runId, follower.DeviceId), e);
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
}
