using RapidFire.Actors.Checkpoints;
using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Training;

/// <summary>
/// Keeps the replicas of a run trained on several devices identical: they start as copies of the leader's state, every
/// step they all get the same averaged gradients and the leader's buffers, and at the end they can be compared.
/// Plain tensor code, called by the leading GpuActor while the followers wait between messages.
/// </summary>
public static class ReplicaSync
{
    /// <summary>
    /// A replica of the leader's state <paramref name="leaderState"/> (captured while it rests on the CPU) for <paramref name="torchDevice"/>: a fresh run state of
    /// the same config, with the leader's weights, buffers and optimizer state (learning rate and moments included).
    /// Call it before the chunk's generator is seeded: creating a model draws from the global generator.
    /// </summary>
    public static RunModel Replicate(MLSpec spec, Config cfg, long seed, byte[] leaderState, string torchDevice)
    {
        var replica = RunModel.Create(spec, cfg, seed);
        try
        {
            RunStateCodec.Restore(replica, leaderState);
            replica.MoveTo(torchDevice);
            return replica;
        }
        catch
        {
            replica.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Averages the gradients of the replicas that computed a shard of the minibatch, weighted by their shard's share of
    /// the examples, and gives the average to every replica (those without a shard this time included), so that each
    /// takes the same optimizer step. The leader's buffers (batch-norm statistics) are copied to the others.
    /// </summary>
    /// <param name="replicas">The leader's state first, then each follower's replica.</param>
    /// <param name="weights">
    /// One weight per replica that computed a shard (the first <c>weights.Length</c> replicas; see
    /// <see cref="Scheduling.DataParallel.Weights"/>); the rest computed nothing this minibatch.
    /// </param>
    public static void AverageGradients(IReadOnlyList<RunModel> replicas, IReadOnlyList<double> weights)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replicas.Count, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(weights.Count, replicas.Count);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        // A replica with no shard did no backward: its gradients are those of an earlier step. Zero them first, so
        // that a parameter no shard reached is in the same state everywhere.
        for (var r = weights.Count; r < replicas.Count; r++) replicas[r].Optimizer.zero_grad();
        var parameters = replicas.Select(r => r.Model.parameters().ToArray()).ToArray();
        var leader = replicas[0].Device;
        // Explicit Scalars, alive past the calls that read them: an implicit one may be finalized mid-call. add_(t)
        // would make an implicit alpha = 1 (an int), so it is passed as one.
        using var one = 1.ToScalar();
        for (var i = 0; i < parameters[0].Length; i++)
        {
            Tensor? sum = null;
            for (var r = 0; r < weights.Count; r++)
            {
                if (parameters[r][i].grad is not { } grad) continue;
                using var weight = weights[r].ToScalar();
                var term = grad.to(torch.device(leader)).mul(weight);
                sum = sum is null ? term : sum.add_(term, one);
            }
            if (sum is null) continue;
            foreach (var replica in parameters)
            {
                var parameter = replica[i];
                if (parameter.grad is { } grad) grad.copy_(sum);
                else parameter.grad = sum.to(parameter.device).clone();
            }
        }
        var buffers = replicas.Select(r => r.Model.buffers().ToArray()).ToArray();
        for (var r = 1; r < replicas.Count; r++)
            for (var i = 0; i < buffers[0].Length; i++)
                buffers[r][i].copy_(buffers[0][i]);
    }

    /// <summary>
    /// How <paramref name="replica"/>'s parameters differ from <paramref name="leader"/>'s: null when they are equal
    /// bit for bit, else the first parameter that differs and by how much.
    /// </summary>
    public static string? Divergence(RunModel leader, RunModel replica)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var mine = replica.Model.named_parameters().ToArray();
        var theirs = leader.Model.named_parameters().ToArray();
        for (var i = 0; i < mine.Length; i++)
        {
            var (name, value) = mine[i];
            var other = theirs[i].parameter.to(value.device);
            var gap = value.numel() == 0 ? 0 : (value - other).abs().max().to_type(ScalarType.Float64).item<double>();
            if (gap == 0) continue;
            return $"parameter '{name}' differs from the leader's by up to {gap:G6}";
        }
        return null;
    }
}
