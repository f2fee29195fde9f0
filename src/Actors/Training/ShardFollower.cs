using Akka.Actor;
using RapidFire.Actors.Data;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Training;

/// <summary>
/// A device's part in a task another device leads (see <see cref="GpuActor"/>): it trains its shard of each minibatch
/// on the replica it took from <see cref="TrainingServices.Replicas"/>, steps the replica when the leader says, and
/// releases it when the task ends. A plain class the GpuActor drives; each method returns the answer for the leader.
/// </summary>
internal sealed class ShardFollower(JoinShard join, IActorRef leader, RunModel replica, MinibatchTrainer trainer, TrainingServices services, string deviceId)
    : IDisposable
{
    private bool failed;

    /// <summary>The task it follows.</summary>
    public JoinShard Join { get; } = join;

    /// <summary>The leading device.</summary>
    public IActorRef Leader { get; } = leader;

    /// <summary>Shards computed so far.</summary>
    public int Done { get; private set; }

    /// <summary>Computes its shard of a minibatch; null when there is nothing to answer (another task's, a failed one, a shard the leader dropped).</summary>
    public object? Compute(ComputeShard compute)
    {
        if (compute.Group != Join.Group || failed) return null;
        // The leader may have ended the task (a failure elsewhere) and dropped the shard since it asked.
        if (services.Exchange.TryTake(compute.Key) is not { } prepared) return null;
        try
        {
            var origin = new MinibatchOrigin(compute.Index, prepared.Ids);
            var result = Join.Mode == Spec.Mode.Train
                ? trainer.Backward(replica, prepared.Batch, origin)
                : trainer.Evaluate(replica, prepared.Batch, Join.Mode, origin);
            Done++;
            return new ShardComputed(Join.Group, compute.Index, Join.Shard, result, prepared.Batch.Size);
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    /// <summary>Steps the replica on the gradients the leader averaged; null unless the step failed.</summary>
    public object? Step(ApplyStep step)
    {
        if (step.Group != Join.Group || failed) return null;
        try
        {
            trainer.Step(replica);
            return null;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    /// <summary>
    /// Leaves the task: compares the replica with the leader's state when asked (and nothing failed), then releases it.
    /// Null when <paramref name="leave"/> is another task's.
    /// </summary>
    public ShardLeft? Leave(LeaveShard leave)
    {
        if (leave.Group != Join.Group) return null;
        string? divergence = null;
        try
        {
            if (leave.Check && !failed && services.Leaders.TryGetValue(Join.Group, out var leading))
                divergence = ReplicaSync.Divergence(leading, replica);
        }
        catch (Exception e)
        {
            divergence = $"the replica on {deviceId} could not be compared with the leader's state: {e.Message}";
        }
        finally
        {
            Dispose();
        }
        return new ShardLeft(Join.Group, Join.Shard, divergence);
    }

    /// <summary>Releases the replica.</summary>
    public void Dispose() => replica.Dispose();

    private ShardFailed Fail(Exception e)
    {
        failed = true;
        return new ShardFailed(Join.Group, Join.Shard, TaskFailures.Named(RunFailureException.Of(e), Join.Task.RunId, deviceId));
    }
}
