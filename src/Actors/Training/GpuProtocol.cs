using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Data;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Training;

/// <summary>Messages of the GpuActors.</summary>
public static class GpuProtocol
{
    /// <summary>
    /// Run <paramref name="Task"/> for the run of <paramref name="Config"/>, which has <paramref name="ChunksPerEpoch"/>
    /// chunks per epoch. When the run's state is not in host memory (after a resume), it is restored from
    /// <paramref name="Checkpoint"/>, its newest durable checkpoint (none: a fresh model).
    /// </summary>
    /// <remarks>
    /// With <paramref name="Followers"/>, the task runs on several devices: this device leads it (it holds the run's
    /// state, its minibatches and its outcome) and each follower trains one more shard of every minibatch on a replica
    /// (see <see cref="Scheduling.DataParallel"/>).
    /// </remarks>
    public sealed record RunTaskOn(RunTask Task, Config Config, int ChunksPerEpoch, CheckpointRef? Checkpoint,
        IReadOnlyList<ShardDevice>? Followers = null) : Cluster.IRemoteMessage;

    /// <summary>A device that trains shards of a task another device leads.</summary>
    public sealed record ShardDevice(string DeviceId, string TorchDevice, Akka.Actor.IActorRef Actor);

    /// <summary>Names a task spread over several devices: its leading device and that device's task serial number.</summary>
    public sealed record ShardGroup(string Leader, long Serial)
    {
        /// <inheritdoc />
        public override string ToString() => $"{Leader}#{Serial}";
    }

    /// <summary>
    /// Leader to follower: train shard <paramref name="Shard"/> (1-based among the followers) of each minibatch of
    /// <paramref name="Task"/> on the replica waiting under (group, shard) in <see cref="TrainingServices.Replicas"/>.
    /// </summary>
    public sealed record JoinShard(ShardGroup Group, int Shard, RunTask Task, Config Config, Mode Mode);

    /// <summary>Leader to follower: run forward (and backward, in training) on the prepared shard <paramref name="Key"/>.</summary>
    public sealed record ComputeShard(ShardGroup Group, int Index, MinibatchKey Key);

    /// <summary>Follower to leader: its shard of minibatch <paramref name="Index"/> is computed; the gradients wait on its replica.</summary>
    public sealed record ShardComputed(ShardGroup Group, int Index, int Shard, StepResult Result, long Size);

    /// <summary>Leader to follower: the averaged gradients are on the replica; take the optimizer step.</summary>
    public sealed record ApplyStep(ShardGroup Group, int Index);

    /// <summary>Follower to leader: its shard failed.</summary>
    public sealed record ShardFailed(ShardGroup Group, int Shard, RunFailure Failure);

    /// <summary>
    /// Leader to follower: the task ended; compare the replica with the leader's state when <paramref name="Check"/>
    /// (see <see cref="RuntimeSettings.ChecksReplicas"/>), release it and answer <see cref="ShardLeft"/>.
    /// </summary>
    public sealed record LeaveShard(ShardGroup Group, bool Check);

    /// <summary>Follower to leader: the replica is released; <paramref name="Divergence"/> says how it differed from the leader's state, if it did.</summary>
    public sealed record ShardLeft(ShardGroup Group, int Shard, string? Divergence);

    /// <summary>
    /// Abandon the current task (the fit is cancelled, or a stalled run is stopped or deleted); the device reports it
    /// as cancelled.
    /// </summary>
    public sealed record CancelTask : Cluster.IRemoteMessage;

    /// <summary>
    /// The task's minibatches wait for an MLSpec call that has stalled (<paramref name="What"/>: which call, on which
    /// row, for how long); the device waits for it, and the other devices go on.
    /// </summary>
    public sealed record TaskStalled(string DeviceId, RunTask Task, string What) : Cluster.IRemoteMessage;

    /// <summary>Ask what the device is doing; answered with <see cref="DeviceStatus"/>.</summary>
    public sealed record GetDeviceStatus : Cluster.IRemoteMessage;

    /// <summary>What a device is doing: its task (null when idle) and how far it got.</summary>
    public sealed record DeviceStatus(string DeviceId, RunTask? Task, int MinibatchesDone, int MinibatchesTotal) : Cluster.IRemoteMessage;

    /// <summary>How a task used the device: minibatches, seconds computing, seconds waiting for prepared minibatches.</summary>
    public sealed record TaskTiming(int Minibatches, double BusySeconds, double WaitSeconds);

    /// <summary>How a task ended.</summary>
    [System.Text.Json.Serialization.JsonPolymorphic(TypeDiscriminatorPropertyName = "outcome")]
    [System.Text.Json.Serialization.JsonDerivedType(typeof(Trained), "trained")]
    [System.Text.Json.Serialization.JsonDerivedType(typeof(Validated), "validated")]
    [System.Text.Json.Serialization.JsonDerivedType(typeof(Failed), "failed")]
    [System.Text.Json.Serialization.JsonDerivedType(typeof(Cancelled), "cancelled")]
    public abstract record TaskOutcome;

    /// <summary>
    /// A chunk was trained: its mean loss over examples, its minibatch records, and the checkpoint of the run's state
    /// captured in host memory after it (waiting in the pending checkpoints; null when not checkpointed).
    /// </summary>
    /// <remarks>
    /// On a cluster node the captured state waits on that node, with <paramref name="Holder"/>, which writes it to the
    /// shared checkpoint store when the run asks (<see cref="Cluster.WorkerProtocol.WriteCheckpoint"/>); null when it
    /// waits in this process's pending checkpoints.
    /// </remarks>
    public sealed record Trained(double MeanLoss, TaskTiming Timing, IReadOnlyList<MinibatchRecord> Records, CheckpointRef? Checkpoint,
        Akka.Actor.IActorRef? Holder = null) : TaskOutcome;

    /// <summary>A validation pass ran; its minibatch records.</summary>
    public sealed record Validated(TaskTiming Timing, IReadOnlyList<MinibatchRecord> Records) : TaskOutcome;

    /// <summary>
    /// The task failed the run. <paramref name="Transient"/>: a native libtorch fault outside the user's MLSpec code
    /// (see <see cref="RunFailureException.IsTransient"/>), which the fit retries once from the run's last checkpoint.
    /// </summary>
    public sealed record Failed(RunFailure Failure, bool Transient = false) : TaskOutcome;

    /// <summary>The task was abandoned by <see cref="CancelTask"/>.</summary>
    public sealed record Cancelled : TaskOutcome;

    /// <summary>A device finished a task, told to the experiment.</summary>
    /// <param name="DeviceId">The device that ran (or led) the task.</param>
    /// <param name="Task">The task.</param>
    /// <param name="Outcome">How it ended.</param>
    /// <param name="Followers">The devices that trained its other shards, when it ran on several.</param>
    public sealed record TaskFinished(string DeviceId, RunTask Task, TaskOutcome Outcome, IReadOnlyList<string>? Followers = null) : Cluster.IRemoteMessage;
}
