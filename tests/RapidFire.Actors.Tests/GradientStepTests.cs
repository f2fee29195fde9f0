using RapidFire.Actors.Training;
using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary><c>train.max_grad_norm</c> and the accumulation windows of <see cref="MinibatchTrainer"/>, without actors.</summary>
public sealed class GradientStepTests
{
    private static Cfg Sgd(params (string Key, object Value)[] train) => new(
        new KeyValuePair<string, object?>[] { new("epochs", 1L), new("batch_size", 16L) }
            .Concat(train.Select(t => new KeyValuePair<string, object?>(t.Key, t.Value)))
            .Append(new KeyValuePair<string, object?>("optimizer", new Dictionary<string, object?> { ["name"] = "SGD", ["args"] = new Dictionary<string, object?> { ["lr"] = 1.0 } })));

    // Kept as Scalars: an implicit or temporary one can be finalized while libtorch still reads it.
    private static readonly Scalar Ten = 10.ToScalar(), Two = 2.ToScalar();

    private static Minibatch Batch()
    {
        var generator = new Generator(11);
        return new Minibatch(new Dictionary<string, object>
        {
            ["x"] = torch.randn([16, 4], generator: generator).mul(Ten),
            ["y"] = torch.randint(0, 2, [16], generator: generator),
        }, 16);
    }

    private static Tensor[] Copy(RunModel state) => state.Model.parameters().Select(p => p.detach().clone()).ToArray();

    private static double Norm(IEnumerable<Tensor> tensors) =>
        Math.Sqrt(tensors.Sum(t => t.pow(Two).sum().to_type(ScalarType.Float64).item<double>()));

    /// <summary>With SGD at lr 1 the step moves the weights by the gradient: its norm is what the step took.</summary>
    private static (double Gradient, double Step) TrainOnce(Cfg cfg)
    {
        var spec = new TinySpec();
        using var state = RunModel.Create(spec, cfg, seed: 5);
        var trainer = new MinibatchTrainer(spec, cfg);
        var before = Copy(state);
        trainer.Backward(state, Batch());
        var gradient = Norm(state.Model.parameters().Select(p => p.grad!));
        trainer.Step(state);
        return (gradient, Norm(Copy(state).Zip(before, (a, b) => a - b)));
    }

    [Fact]
    public void Max_grad_norm_clips_the_total_gradient_norm_before_the_step()
    {
        var (gradient, unclipped) = TrainOnce(Sgd());
        Assert.Equal(gradient, unclipped, 1e-5);
        Assert.True(gradient > 0.01, $"the test needs a gradient above the clip, got {gradient}");

        var (same, clipped) = TrainOnce(Sgd(("max_grad_norm", 0.01)));
        Assert.Equal(gradient, same, 1e-9);
        Assert.Equal(0.01, clipped, 1e-5);

        var (_, above) = TrainOnce(Sgd(("max_grad_norm", gradient * 10)));
        Assert.Equal(unclipped, above, 1e-9); // a norm under the limit is left as it is
    }

    [Theory]
    [InlineData(1, 7, new[] { 0, 1, 2, 3, 4, 5, 6 })]
    [InlineData(3, 7, new[] { 2, 5, 6 })]  // windows of 3, and the chunk's last minibatch ends a short one
    [InlineData(4, 8, new[] { 3, 7 })]
    [InlineData(10, 4, new[] { 3 })]       // a window longer than the chunk ends with it
    public void The_step_comes_after_each_window_and_after_the_chunks_last_minibatch(int accumulate, int count, int[] steps)
    {
        var cfg = Sgd(("accumulate_grad_batches", (long)accumulate));
        var trainer = new MinibatchTrainer(new TinySpec(), cfg);
        Assert.Equal(steps, Enumerable.Range(0, count).Where(i => trainer.StepsAfter(i, count)));
    }
}
