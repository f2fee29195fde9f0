using System.Diagnostics;
using Akka.Actor;
using RapidFire.Actors.Data;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Training;

/// <summary>
/// The task a <see cref="GpuActor"/> leads, in progress: its minibatches, which have arrived, the shards of the one being
/// computed, its records and timing. Transient: nothing of it is persisted.
/// </summary>
internal sealed class LeadTask(RunTaskOn order, Mode mode, RunModel state, MinibatchTrainer trainer, IReadOnlyList<int[]> minibatches, int firstStep,
    ShardGroup group, IReadOnlyList<RunModel> replicas)
{
    private readonly HashSet<(int Index, int Shard)> ready = [];
    private readonly Dictionary<int, IReadOnlyList<int[]>> shards = [];
    private readonly Stopwatch busy = new();
    private readonly Stopwatch waiting = Stopwatch.StartNew();
    private (StepResult Result, long Size)?[] computed = [];
    private double lossSum;
    private long examples;
    // the accumulation window in progress (accumulate_grad_batches): its rows, and the most shards a minibatch had
    private long windowRows;
    private int windowShards;

    public RunTaskOn Order { get; } = order;
    public RunTask Task => Order.Task;
    public Mode Mode { get; } = mode;
    public RunModel State { get; } = state;
    public ShardGroup Group { get; } = group;
    public IReadOnlyList<int[]> Minibatches { get; } = minibatches;
    public int FirstStep { get; } = firstStep;
    public List<MinibatchRecord> Records { get; } = [];
    public int Requested { get; set; }
    public int Done { get; private set; }
    /// <summary>Whether the shards of minibatch <see cref="Done"/> are being computed.</summary>
    public bool Stepping => busy.IsRunning;
    public bool IsReady => Enumerable.Range(0, ShardCount(Done)).All(s => ready.Contains((Done, s)));
    public bool StepComplete => Stepping && computed.All(c => c is not null);
    public double MeanLoss => examples == 0 ? double.NaN : lossSum / examples;
    public TaskTiming Timing => new(Done, busy.Elapsed.TotalSeconds, waiting.Elapsed.TotalSeconds);

    /// <summary>The rows of each shard of minibatch <paramref name="index"/>: one per device, fewer when it has fewer rows.</summary>
    public IReadOnlyList<int[]> Shards(int index)
    {
        if (!shards.TryGetValue(index, out var split))
            shards[index] = split = DataParallel.Split(Minibatches[index], replicas.Count);
        return split;
    }

    public int ShardCount(int index) => index < Minibatches.Count ? Shards(index).Count : 0;

    /// <summary>A shard arrived; when it completes the next minibatch, processing resumes.</summary>
    public void Arrived(int index, int shard)
    {
        ready.Add((index, shard));
        if (index == Done && !busy.IsRunning && IsReady) waiting.Stop();
    }

    /// <summary>Minibatch <see cref="Done"/> starts, as <paramref name="count"/> shards.</summary>
    public void Begin(int count)
    {
        for (var s = 0; s < count; s++) ready.Remove((Done, s));
        computed = new (StepResult, long)?[count];
        waiting.Stop();
        busy.Start();
    }

    /// <summary>Computes this device's shard: forward and backward in training (the step comes in <see cref="Finish"/>), forward only otherwise.</summary>
    public StepResult Compute(PreparedMinibatch prepared) =>
        Mode != Mode.Train ? trainer.Evaluate(State, prepared.Batch, Mode, new MinibatchOrigin(Done, prepared.Ids))
        : trainer.Backward(State, prepared.Batch, new MinibatchOrigin(Done, prepared.Ids));

    public void ShardArrived(int shard, StepResult result, long size) => computed[shard] = (result, size);

    /// <summary>
    /// Every shard is in. In training, when the minibatch ends an accumulation window (every minibatch does without
    /// <c>accumulate_grad_batches</c>): on several devices, averages the gradients and steps the leader's replica (the
    /// followers are told to step theirs), on one device steps; returns the minibatch's combined result and size.
    /// </summary>
    public (StepResult Result, long Size) Finish()
    {
        var parts = computed.Select(c => c!.Value).ToList();
        if (Mode == Mode.Train)
        {
            windowRows += parts.Sum(p => p.Size);
            windowShards = Math.Max(windowShards, parts.Count);
            if (trainer.StepsAfter(Done, Minibatches.Count))
            {
                Step(parts);
                (windowRows, windowShards) = (0, 0);
            }
        }
        busy.Stop();
        Done++;
        var result = StepResult.Combine(parts);
        var size = parts.Sum(p => p.Size);
        if (result.Loss is { } loss)
        {
            lossSum += loss * size;
            examples += size;
        }
        if (!IsReady) waiting.Start();
        return (result, size);
    }

    /// <summary>
    /// The window's step. Without accumulation each shard's gradient is of its mean loss: they are averaged weighted by
    /// shard rows. With it, each holds the sum over the window of its minibatches' mean loss times their rows: the sum
    /// over replicas divided by the window's rows is the gradient of the window's mean loss, on one device as on several.
    /// </summary>
    private void Step(IReadOnlyList<(StepResult Result, long Size)> parts)
    {
        if (replicas.Count == 1)
        {
            trainer.Step(State, trainer.Accumulate == 1 ? 1 : 1.0 / windowRows);
            return;
        }
        IReadOnlyList<double> weights = trainer.Accumulate == 1
            ? DataParallel.Weights(parts.Select(p => p.Size).ToList())
            : Enumerable.Repeat(1.0 / windowRows, windowShards).ToList();
        ReplicaSync.AverageGradients(replicas, weights);
        trainer.Step(State);
        foreach (var follower in Order.Followers!) follower.Actor.Tell(new ApplyStep(Group, Done));
    }
}

/// <summary>
/// A task on several devices that has ended, waiting for its followers to release their replicas: its outcome, the
/// followers that have left, and the first divergence one reported (a failure of the task).
/// </summary>
internal sealed class ClosingTask(LeadTask task, GpuProtocol.TaskOutcome outcome)
{
    private readonly HashSet<int> left = [];
    private string? divergence;

    public LeadTask Task { get; } = task;

    /// <summary>Notes that a follower left; once the last has, the task's outcome (null before).</summary>
    public GpuProtocol.TaskOutcome? Left(GpuProtocol.ShardLeft gone, string leaderId)
    {
        var followers = Task.Order.Followers!;
        if (gone.Group != Task.Group || !left.Add(gone.Shard)) return null;
        if (gone.Divergence is { } d)
            divergence ??= $"the replica on {followers[gone.Shard - 1].DeviceId} diverged from the state on {leaderId} " +
                           $"after {Task.Done} minibatches: {d}";
        if (left.Count < followers.Count) return null;
        return divergence is null ? outcome : new GpuProtocol.Failed(TaskFailures.Where(new Runs.RunFailure("data-parallel", divergence), Task.Task));
    }
}
