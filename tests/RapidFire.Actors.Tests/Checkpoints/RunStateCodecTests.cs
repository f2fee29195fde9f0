using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Training;
using TorchSharp;
using TorchSharp.Modules;
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

    // ---- warm starts: a parent's checkpoint restored under a clone's knobs ----

    private static Cfg WithoutScheduler(Cfg cfg) => new(cfg.Where(kv => kv.Key != Cfg.LrSchedulerKey));

    /// <summary>The parent's knobs with another learning rate, as a clone's are made.</summary>
    private static Cfg WithLr(Cfg cfg, double lr) =>
        ControlRules.CloneConfig(cfg, new Dictionary<string, string> { ["optimizer.args.lr"] = lr.ToString("R", System.Globalization.CultureInfo.InvariantCulture) });

    private static byte[] Bytes(Action<BinaryWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) write(writer);
        return stream.ToArray();
    }

    /// <summary>The optimizer's per-parameter state (Adam's step count and moments), as bytes.</summary>
    private static byte[][] PerParameterState(RunModel state) =>
        ((OptimizerHelper)state.Optimizer).state_dict().State.Select(s => Bytes(s.SaveStateDict)).ToArray();

    /// <summary>The optimizer's param-group options (learning rate, betas, weight decay...), as bytes.</summary>
    private static byte[][] Options(RunModel state) =>
        ((OptimizerHelper)state.Optimizer).state_dict().Options.Select(o => Bytes(o.SaveStateDict)).ToArray();

    [Fact]
    public async Task A_warm_start_takes_the_parents_weights_and_adam_moments_with_the_clones_learning_rate()
    {
        var parentCfg = WithoutScheduler(Config("Adam"));
        using var parent = RunModel.Create(new TinySpec(), parentCfg, Seed);
        TrainSteps(parent, 0, 4);
        var checkpoint = await SaveAndLoad(parent, 0, new CheckpointRef(1, 0, 3));

        using var clone = RunModel.Create(new TinySpec(), WithLr(parentCfg, 0.002), Seed);
        Assert.False(BitIdentical(parent, clone));
        Assert.NotEqual(PerParameterState(parent), PerParameterState(clone)); // else the checks below would prove nothing
        RunStateCodec.RestoreInto(clone, checkpoint);

        Assert.True(BitIdentical(parent, clone));
        Assert.Equal([0.002], LearningRates(clone));
        Assert.Equal([0.01], LearningRates(parent));
        var parentState = PerParameterState(parent);
        Assert.NotEmpty(parentState);
        Assert.Equal(parentState, PerParameterState(clone));

        // The same step from the same moments at the same learning rate lands on the same weights.
        foreach (var group in parent.Optimizer.ParamGroups) group.LearningRate = 0.002;
        TrainSteps(parent, 4, 5);
        TrainSteps(clone, 4, 5);
        Assert.True(BitIdentical(parent, clone));
    }

    [Fact]
    public async Task A_warm_start_replays_the_parents_scheduler_steps_from_the_clones_learning_rate()
    {
        var parentCfg = Config("Adam"); // StepLR, gamma 0.5 per step
        using var parent = RunModel.Create(new TinySpec(), parentCfg, Seed);
        var steps = TrainSteps(parent, 0, 4, schedulerAfter: [1]);
        var checkpoint = await SaveAndLoad(parent, steps, new CheckpointRef(1, 1, 0));

        using var clone = RunModel.Create(new TinySpec(), WithLr(parentCfg, 0.002), Seed);
        RunStateCodec.RestoreInto(clone, checkpoint);

        Assert.True(BitIdentical(parent, clone));
        Assert.Equal(0.01 * 0.5, LearningRates(parent).Single(), 1e-15);
        Assert.Equal(0.002 * 0.5, LearningRates(clone).Single(), 1e-15);
        Assert.Equal(PerParameterState(parent), PerParameterState(clone));
    }

    [Fact]
    public async Task A_plain_restore_under_the_same_knobs_gives_back_the_same_optimizer_options()
    {
        var cfg = Config("Adam");
        using var original = RunModel.Create(new TinySpec(), cfg, Seed);
        var steps = TrainSteps(original, 0, 4, schedulerAfter: [1, 3]);
        var checkpoint = await SaveAndLoad(original, steps, new CheckpointRef(1, 1, 1));

        using var restored = RunModel.Create(new TinySpec(), cfg, Seed);
        RunStateCodec.RestoreInto(restored, checkpoint);

        Assert.Equal(Options(original), Options(restored));
        Assert.Equal(PerParameterState(original), PerParameterState(restored));
        Assert.Equal(0.01 * 0.25, LearningRates(restored).Single(), 1e-15);
    }

    [Theory]
    [InlineData(0, 0, 0)]
    [InlineData(0, 2, 0)]
    [InlineData(0, 3, 1)] // the epoch's last chunk: its scheduler step is taken
    [InlineData(2, 1, 2)]
    [InlineData(2, 3, 3)]
    public void Scheduler_steps_at_a_checkpoint_count_the_finished_epochs(int epoch, int chunk, int expected)
    {
        Assert.Equal(expected, CheckpointHeader.SchedulerStepsAt(new CheckpointRef(1, epoch, chunk), chunksPerEpoch: 4, Config("Adam")));
    }

    [Theory]
    [InlineData(0, 3)]
    [InlineData(2, 1)]
    [InlineData(2, 3)]
    public void Scheduler_steps_at_a_checkpoint_are_none_without_an_lr_scheduler(int epoch, int chunk)
    {
        Assert.Equal(0, CheckpointHeader.SchedulerStepsAt(new CheckpointRef(1, epoch, chunk), chunksPerEpoch: 4, WithoutScheduler(Config("Adam"))));
    }

    [Fact]
    public void Scheduler_steps_with_one_chunk_per_epoch_count_every_epoch_including_the_current_one()
    {
        Assert.Equal(1, CheckpointHeader.SchedulerStepsAt(new CheckpointRef(1, 0, 0), chunksPerEpoch: 1, Config("Adam")));
        Assert.Equal(3, CheckpointHeader.SchedulerStepsAt(new CheckpointRef(1, 2, 0), chunksPerEpoch: 1, Config("Adam")));
    }
}
