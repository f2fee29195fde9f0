using RapidFire.Actors.Data;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using TorchSharp;
using RapidFire.Actors.Metrics;
using static TorchSharp.torch;

namespace RapidFire.Actors.Training;

/// <summary>What one minibatch step produced: its loss and metrics, as numbers (no tensor outlives the step).</summary>
public sealed record StepResult(double? Loss, IReadOnlyDictionary<string, NamedCount> Named, MetricValues Values)
{
    /// <summary>
    /// The result of a minibatch computed as shards (one per device), from each shard's result and size in shard order:
    /// the loss is the shards' losses weighted by their share of the examples (the mean over the minibatch when each
    /// is a mean over its shard), named metric counts are added, and <c>ComputeMetrics</c> values merge as the seed
    /// says (<see cref="MetricValues.Merge"/>: tensor metrics summed, others appended into one list).
    /// </summary>
    public static StepResult Combine(IReadOnlyList<(StepResult Result, long Size)> shards)
    {
        if (shards.Count == 1) return shards[0].Result;
        var weights = Scheduling.DataParallel.Weights(shards.Select(s => s.Size).ToList());
        double? loss = shards.All(s => s.Result.Loss is not null) ? shards.Select((s, i) => s.Result.Loss!.Value * weights[i]).Sum() : null;
        var named = new Dictionary<string, NamedCount>();
        foreach (var (key, count) in shards.SelectMany(s => s.Result.Named))
            named[key] = named.TryGetValue(key, out var sum) ? new NamedCount(sum.Correct + count.Correct, sum.Count + count.Count) : count;
        return new StepResult(loss, named, MetricValues.Merge(shards.Select(s => s.Result.Values)));
    }
}

/// <summary>
/// The body of the training loop for one run: one minibatch forward (and, in training, backward and optimizer step),
/// with the named metrics and <c>ComputeMetrics</c>. A plain class: the GpuActor drives it minibatch by minibatch
/// on its own thread. Every tensor a step creates, the minibatch's included, is disposed when the step ends.
/// </summary>
public sealed class MinibatchTrainer(MLSpec spec, Config cfg)
{
    private readonly IReadOnlyList<NamedMetric> named = cfg.NamedMetrics.Select(NamedMetric.Parse).ToList();
    private readonly int accumulate = cfg.AccumulateGradBatches;
    private readonly double? maxGradNorm = cfg.MaxGradNorm;

    /// <summary><c>accumulate_grad_batches</c>: the minibatches of one optimizer step (1: every minibatch steps).</summary>
    public int Accumulate => accumulate;

    /// <summary>
    /// Trains on one minibatch alone (forward, loss check, backward, optimizer step), as a task on one device does
    /// without accumulation: <see cref="Backward"/> then <see cref="Step"/>.
    /// </summary>
    public StepResult Train(RunModel state, Minibatch minibatch, MinibatchOrigin? origin = null)
    {
        var result = Backward(state, minibatch, origin);
        Step(state);
        return result;
    }

    /// <summary>
    /// Whether the optimizer steps after minibatch <paramref name="index"/> (0-based in its task) of <paramref name="count"/>:
    /// at the end of each window of <c>accumulate_grad_batches</c> minibatches, and after the task's last minibatch (a
    /// window never spans a chunk: the model may change devices between chunks, its gradients do not travel).
    /// </summary>
    public bool StepsAfter(int index, int count) => (index + 1) % accumulate == 0 || index + 1 == count;

    /// <summary>
    /// The first half of a training step (alone for a shard of a minibatch trained on several devices): forward, loss
    /// check, backward (the gradients stay on the model's parameters) and the metrics. A non-finite loss fails the run,
    /// naming the minibatch and, with its <paramref name="origin"/>, its rows and those holding a non-finite input.
    /// <para>With <c>accumulate_grad_batches</c> N &gt; 1 the gradients of a window's minibatches add up: they are zeroed
    /// only at a window's first minibatch (<paramref name="origin"/>'s index a multiple of N), and each minibatch (or
    /// shard) back-propagates its mean loss times its rows, so that the step, which divides by the window's rows, takes
    /// the gradient of the window's mean loss: that of one minibatch N times larger.</para>
    /// </summary>
    public StepResult Backward(RunModel state, Minibatch minibatch, MinibatchOrigin? origin = null)
    {
        using var scope = torch.NewDisposeScope();
        var batch = OnDevice(scope, minibatch, state.Device);
        state.Model.train();
        if (accumulate == 1 || (origin?.Index ?? 0) % accumulate == 0) state.Optimizer.zero_grad();
        var result = SpecCall.Run("ComputeForward", () => spec.ComputeForward(state.Model, batch, cfg, Mode.Train).Checked(Mode.Train));
        var loss = FiniteLoss(result.Loss!, batch, origin, Mode.Train);
        if (accumulate == 1)
            SpecCall.Run("loss.backward", () => result.Loss!.backward());
        else
        {
            using var rows = ((double)minibatch.Size).ToScalar();
            SpecCall.Run("loss.backward", () => result.Loss!.mul(rows).backward());
        }
        using var _ = torch.no_grad();
        return new StepResult(loss, Count(result.Outputs), Metrics(result, batch, Mode.Train));
    }

    /// <summary>
    /// The second half of a training step: the optimizer step on the gradients the model holds. <paramref name="gradScale"/>
    /// multiplies them first (1 / the window's rows, for an accumulated window on one device); with <c>max_grad_norm</c>
    /// their total norm is then clipped to it. With accumulation the gradients are zeroed after the step, so that a
    /// replica without a shard in the next window's first minibatch starts it from zero too.
    /// </summary>
    public void Step(RunModel state, double gradScale = 1)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        if (gradScale != 1)
        {
            using var scale = gradScale.ToScalar();
            foreach (var p in state.Model.parameters())
                p.grad?.mul_(scale);
        }
        if (maxGradNorm is { } norm)
            SpecCall.Run("max_grad_norm", () => nn.utils.clip_grad_norm_(state.Model.parameters(), norm));
        SpecCall.Run("optimizer", () => state.Optimizer.step());
        if (accumulate > 1) state.Optimizer.zero_grad();
    }

    /// <summary>Evaluates one minibatch (validation or test): forward only, no gradients.</summary>
    public StepResult Evaluate(RunModel state, Minibatch minibatch, Mode mode, MinibatchOrigin? origin = null)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var batch = OnDevice(scope, minibatch, state.Device);
        state.Model.eval();
        var result = SpecCall.Run("ComputeForward", () => spec.ComputeForward(state.Model, batch, cfg, mode).Checked(mode));
        var loss = result.Loss is null ? (double?)null : FiniteLoss(result.Loss, batch, origin, mode);
        return new StepResult(loss, Count(result.Outputs), Metrics(result, batch, mode));
    }

    /// <summary>
    /// Predicts on one minibatch: forward in predict mode (outputs only), no gradients. <paramref name="take"/> reads the
    /// outputs (copying what it keeps) before every tensor of the step is disposed.
    /// </summary>
    public void Predict(RunModel state, Minibatch minibatch, Action<IReadOnlyDictionary<string, object>> take)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var batch = OnDevice(scope, minibatch, state.Device);
        state.Model.eval();
        var result = SpecCall.Run("ComputeForward", () => spec.ComputeForward(state.Model, batch, cfg, Mode.Predict).Checked(Mode.Predict));
        take(result.Outputs);
    }

    private static Minibatch OnDevice(DisposeScope scope, Minibatch minibatch, string device)
    {
        foreach (var tensor in TensorTree.Tensors(minibatch.Value)) scope.Attach(tensor);
        return device == "cpu"
            ? minibatch
            : new Minibatch(TensorTree.Map(minibatch.Value, t => t.to(torch.device(device))), minibatch.Size);
    }

    /// <summary>The loss as a number; a non-finite one fails the run (the minibatch's inputs are read only then).</summary>
    private static double FiniteLoss(Tensor loss, Minibatch batch, MinibatchOrigin? origin, Mode mode)
    {
        var value = loss.detach().to_type(ScalarType.Float64).item<double>();
        return double.IsFinite(value)
            ? value
            : throw new RunFailureException(NonFiniteLoss.Failure(value, batch, origin, mode));
    }

    private Dictionary<string, NamedCount> Count(IReadOnlyDictionary<string, object> outputs) =>
        named.ToDictionary(m => m.Name, m =>
        {
            var (correct, count) = SpecCall.Run("ComputeForward", () => m.Count(outputs!));
            return new NamedCount(correct, count);
        });

    private MetricValues Metrics(ForwardResult result, Minibatch batch, Mode mode) =>
        SpecCall.Run("ComputeMetrics", () => MetricValues.FromParts([spec.ComputeMetrics(result.Loss, result.Outputs, batch, cfg, mode)]));
}
