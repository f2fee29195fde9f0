using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Training;
using TorchSharp;
using static TorchSharp.torch;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests.Checkpoints;

/// <summary>
/// Tests that seed torch's process-wide generator and then draw from it (dropout) run alone: another test drawing in
/// between would change what they draw.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalGeneratorCollection
{
    public const string Name = "torch global generator";
}

[Collection(TorchGlobalGeneratorCollection.Name)]
public sealed class RunStateCodecTests : IDisposable
{
    private const long Seed = 11;
    private readonly string folder = Directory.CreateTempSubdirectory("rf-codec-").FullName;
    private readonly LocalCheckpointStore store;
    private readonly Tensor x;
    private readonly Tensor y;

    public RunStateCodecTests()
    {
        store = new LocalCheckpointStore(folder);
        lock (TorchRandom.Lock)
        {
            torch.manual_seed(5);
            x = torch.randn(32, 4);
            y = torch.randint(0, 2, 32);
        }
    }

    public void Dispose()
    {
        x.Dispose();
        y.Dispose();
        Directory.Delete(folder, recursive: true);
    }

    private static Dictionary<string, object?> Component(string name, Dictionary<string, object?> args) =>
        new() { ["name"] = name, ["args"] = args };

    private static Cfg Config(string optimizer, int hidden = 8) => new([
        new("epochs", 3L),
        new("batch_size", 32L),
        new("hidden", (long)hidden),
        new("dropout", 0.3),
        new("optimizer", optimizer switch
        {
            "Adam" => Component("Adam", new() { ["lr"] = 0.01 }),
            "SGD" => Component("SGD", new() { ["lr"] = 0.05, ["momentum"] = 0.9 }),
            _ => throw new ArgumentOutOfRangeException(nameof(optimizer), optimizer, null),
        }),
        new("lr_scheduler", Component("StepLR", new() { ["step_size"] = 1L, ["gamma"] = 0.5 })),
    ]);

    /// <summary>One optimizer step on the fixed data, with dropout drawn from the generator seeded by <paramref name="step"/>.</summary>
    private void Train(RunModel state, int step)
    {
        lock (TorchRandom.Lock)
        {
            using var scope = torch.NewDisposeScope();
            torch.manual_seed(1000 + step);
            state.Model.train();
            state.Optimizer.zero_grad();
            var logits = ((nn.Module<Tensor, Tensor>)state.Model).forward(x);
            nn.functional.cross_entropy(logits, y).backward();
            state.Optimizer.step();
        }
    }

    /// <summary>Trains steps [from, to), stepping the scheduler after each step in <paramref name="schedulerAfter"/>; returns the scheduler steps taken.</summary>
    private int TrainSteps(RunModel state, int from, int to, params int[] schedulerAfter)
    {
        var stepped = 0;
        for (var step = from; step < to; step++)
        {
            Train(state, step);
            if (schedulerAfter.Contains(step))
            {
                state.Scheduler!.step();
                stepped++;
            }
        }
        return stepped;
    }

    private static Dictionary<string, Tensor> Weights(RunModel state) =>
        state.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    private static bool BitIdentical(RunModel a, RunModel b)
    {
        var left = Weights(a);
        var right = Weights(b);
        Assert.Equal(left.Keys, right.Keys);
        return left.All(kv => kv.Value.allclose(right[kv.Key], rtol: 0, atol: 0));
    }

    private static double[] LearningRates(RunModel state) => state.Optimizer.ParamGroups.Select(g => g.LearningRate).ToArray();

    private async Task<Checkpoint> SaveAndLoad(RunModel state, int schedulerSteps, CheckpointRef key)
    {
        var header = new CheckpointHeader(key.RunId, key.Epoch, key.Chunk, Seed, schedulerSteps, DateTimeOffset.UtcNow, "{}");
        await store.SaveAsync(key, header, RunStateCodec.Capture(state));
        return store.Load(key);
    }

    [Theory]
    [InlineData("Adam")]
    [InlineData("SGD")]
    public async Task A_restored_run_trains_on_bit_identical_to_the_original(string optimizer)
    {
        var cfg = Config(optimizer);
        using var original = RunModel.Create(new TinySpec(), cfg, Seed);
        var schedulerSteps = TrainSteps(original, 0, 6, schedulerAfter: [2, 5]);
        var checkpoint = await SaveAndLoad(original, schedulerSteps, new CheckpointRef(1, 1, 2));

        using var restored = RunModel.Create(new TinySpec(), cfg, Seed);
        Assert.False(BitIdentical(original, restored)); // the test would prove nothing otherwise
        RunStateCodec.RestoreInto(restored, checkpoint);

        Assert.True(BitIdentical(original, restored));
        Assert.Equal(LearningRates(original), LearningRates(restored));
        var initial = optimizer == "Adam" ? 0.01 : 0.05;
        Assert.Equal(initial * 0.25, LearningRates(restored).Single(), 1e-15); // StepLR halved it twice

        TrainSteps(original, 6, 10, schedulerAfter: [7]);
        TrainSteps(restored, 6, 10, schedulerAfter: [7]);

        Assert.True(BitIdentical(original, restored));
        Assert.Equal(LearningRates(original), LearningRates(restored));
        Assert.Equal(initial * 0.125, LearningRates(restored).Single(), 1e-15);
    }

    [Theory]
    [InlineData("Adam")]
    [InlineData("SGD")]
    public void Restoring_the_weights_without_the_optimizer_state_would_diverge(string optimizer)
    {
        // The control for the test above: these optimizers carry state (moments, momentum) that matters.
        var cfg = Config(optimizer);
        using var original = RunModel.Create(new TinySpec(), cfg, Seed);
        var schedulerSteps = TrainSteps(original, 0, 6, schedulerAfter: [2, 5]);

        using var weightsOnly = RunModel.Create(new TinySpec(), cfg, Seed);
        for (var i = 0; i < schedulerSteps; i++) weightsOnly.Scheduler!.step();
        using (torch.no_grad())
        {
            var source = original.Model.state_dict();
            foreach (var (name, tensor) in weightsOnly.Model.state_dict()) tensor.copy_(source[name]);
        }
        Assert.True(BitIdentical(original, weightsOnly));
        Assert.Equal(LearningRates(original), LearningRates(weightsOnly));

        TrainSteps(original, 6, 8);
        TrainSteps(weightsOnly, 6, 8);

        Assert.False(BitIdentical(original, weightsOnly));
    }

    [Fact]
    public async Task A_checkpoint_of_another_model_shape_is_refused_naming_the_file()
    {
        using var original = RunModel.Create(new TinySpec(), Config("Adam", hidden: 8), Seed);
        TrainSteps(original, 0, 2);
        var checkpoint = await SaveAndLoad(original, 0, new CheckpointRef(2, 0, 1));

        using var wider = RunModel.Create(new TinySpec(), Config("Adam", hidden: 12), Seed);
        var error = Assert.Throws<InvalidDataException>(() => RunStateCodec.RestoreInto(wider, checkpoint));

        Assert.Contains(store.Describe(checkpoint.Ref), error.Message);
        Assert.Contains("model state", error.Message);
    }

    [Fact]
    public async Task A_checkpoint_of_another_optimizer_is_refused_naming_the_file()
    {
        using var original = RunModel.Create(new TinySpec(), Config("Adam"), Seed);
        var checkpoint = await SaveAndLoad(original, 0, new CheckpointRef(2, 0, 0));

        using var sgd = RunModel.Create(new TinySpec(), Config("SGD"), Seed);
        var error = Assert.Throws<InvalidDataException>(() => RunStateCodec.RestoreInto(sgd, checkpoint));

        Assert.Contains(store.Describe(checkpoint.Ref), error.Message);
        Assert.Contains("optimizer state", error.Message);
    }

    [Fact]
    public void A_truncated_or_foreign_payload_is_refused()
    {
        using var original = RunModel.Create(new TinySpec(), Config("Adam"), Seed);
        var payload = RunStateCodec.Capture(original);
        using var fresh = RunModel.Create(new TinySpec(), Config("Adam"), Seed);

        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => RunStateCodec.Restore(fresh, payload.AsSpan(..^10))).Message);
        Assert.Contains("RFRS", Assert.Throws<InvalidDataException>(() => RunStateCodec.Restore(fresh, "RFCK and more bytes"u8)).Message);
        Assert.Contains("unexpected bytes", Assert.Throws<InvalidDataException>(() => RunStateCodec.Restore(fresh, [.. payload, 1, 2])).Message);
    }

    [Fact]
    public async Task Scheduler_steps_for_a_run_without_a_scheduler_are_refused_naming_the_file()
    {
        var cfg = new Cfg(Config("Adam").Where(kv => kv.Key != Cfg.LrSchedulerKey));
        using var original = RunModel.Create(new TinySpec(), cfg, Seed);
        var checkpoint = await SaveAndLoad(original, 3, new CheckpointRef(3, 0, 0));

        using var fresh = RunModel.Create(new TinySpec(), cfg, Seed);
        var error = Assert.Throws<InvalidDataException>(() => RunStateCodec.RestoreInto(fresh, checkpoint));
        Assert.Contains(store.Describe(checkpoint.Ref), error.Message);
        Assert.Contains("lr_scheduler", error.Message);
    }
}
