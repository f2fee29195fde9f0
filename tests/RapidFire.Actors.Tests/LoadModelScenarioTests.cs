using System.Collections.Concurrent;
using System.Text;
using Akka.Actor;
using Microsoft.Data.Analysis;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Training.GpuProtocol;
using static TorchSharp.torch;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>
/// <c>LoadModel</c> against what the runtime itself writes (its checkpoints) and inside a real fit, where the
/// runtime gives the spec the data handle's models locator.
/// </summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class LoadModelScenarioTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TinyData data = new();
    private readonly string models = Directory.CreateTempSubdirectory("rf-models-").FullName;
    private readonly List<TrainingServices> services = [];

    public LoadModelScenarioTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        foreach (var s in services) s.Dispose();
        data.Dispose();
        Directory.Delete(models, recursive: true);
        Shutdown();
    }

    /// <summary>TinySpec, whose <c>CreateModel</c> warm-starts from the tag in the <c>warm_start</c> knob and records the weights it started with.</summary>
    private sealed class WarmStartSpec(ConcurrentQueue<Dictionary<string, Tensor>> created) : MLSpec
    {
        private readonly TinySpec tiny = new();

        public override object RowPrep(Row row, Cfg cfg, Mode mode) => tiny.RowPrep(row, cfg, mode);

        public override nn.Module CreateModel(Cfg cfg)
        {
            var model = LoadModel(cfg.Get<string>("warm_start"), tiny.CreateModel(cfg));
            created.Enqueue(Copy(model.state_dict()));
            return model;
        }

        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Cfg cfg, Mode mode) =>
            tiny.ComputeForward(model, minibatch, cfg, mode);

        public override IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
            Minibatch minibatch, Cfg cfg, Mode mode) => tiny.ComputeMetrics(loss, outputs, minibatch, cfg, mode);

        public override IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Cfg cfg, Mode mode) =>
            tiny.AggregateMetrics(metrics, cfg, mode);
    }

    private static Cfg Config(params (string Key, object Value)[] knobs) => new(
        knobs.Select(k => new KeyValuePair<string, object?>(k.Key, k.Value)).Concat([
            new("batch_size", 16L),
            new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } }),
        ]));

    private static Dictionary<string, Tensor> Copy(Dictionary<string, Tensor> state)
    {
        using var _ = torch.no_grad();
        return state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone());
    }

    private static bool SameWeights(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        return expected.All(kv => kv.Value.allclose(actual[kv.Key], rtol: 0, atol: 0));
    }

    private async Task<(FitCompleted Result, TrainingServices Services)> Fit(Func<MLSpec> spec, DataHandle handle, params Cfg[] configs)
    {
        var settings = new RuntimeSettings(Chunks: 2, Devices: "cpu") with { JournalIdPrefix = $"{Guid.NewGuid():N}/" };
        var s = new TrainingServices(spec, handle, settings);
        services.Add(s);
        var experiment = Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse(settings.Devices, () => 0)));
        var runs = configs.Select((c, i) => new RunDefinition(i + 1, c)).ToList();
        return (await experiment.Ask<FitCompleted>(new RunFit(runs), Patience), s);
    }

    [Fact]
    public async Task A_checkpoint_the_runtime_wrote_loads_as_the_weights_of_its_model()
    {
        var cfg = Config(("epochs", 1L), ("hidden", 6L));
        using var state = RunModel.Create(new TinySpec(), cfg, seed: 11);
        lock (TorchRandom.Lock)
        {
            // one Adam step, so that the checkpoint's optimizer section holds moments to skip
            using var scope = torch.NewDisposeScope();
            torch.manual_seed(2);
            var logits = ((nn.Module<Tensor, Tensor>)state.Model).forward(torch.randn(8, 4));
            nn.functional.cross_entropy(logits, torch.randint(0, 2, 8)).backward();
            state.Optimizer.step();
        }
        var key = new CheckpointRef(3, 1, 0);
        var store = new LocalCheckpointStore(models);
        await store.SaveAsync(key, new CheckpointHeader(3, 1, 0, 11, 0, DateTimeOffset.UtcNow, "{}"), RunStateCodec.Capture(state));
        var spec = new TinySpec { Context = new SpecContext(models) };

        var loaded = spec.LoadModel(key.RelativePath);
        Assert.True(SameWeights(state.Model.state_dict(), loaded));

        var fresh = spec.LoadModel(key.RelativePath, spec.CreateModel(cfg));
        Assert.True(SameWeights(state.Model.state_dict(), fresh.state_dict()));

        var path = Path.Combine(models, key.RelativePath);
        var bytes = File.ReadAllBytes(path);
        bytes[^3] ^= 0x10; // a flipped bit in the optimizer state: the model section reads fine, the digest does not
        File.WriteAllBytes(path, bytes);
        var corrupt = Assert.Throws<SpecException>(() => spec.LoadModel(key.RelativePath));
        Assert.StartsWith($"MLSpec.LoadModel: model tag 'run-3/e0001-c0000.ckpt' ({path}) cannot be read as a RapidFire checkpoint (.ckpt): SHA-256 mismatch",
            corrupt.Message);
    }

    [Fact]
    public async Task A_fit_whose_CreateModel_warm_starts_from_the_models_locator_trains_from_the_loaded_weights()
    {
        // Pretrain a TinySpec run and save its weights with TorchSharp's Module.save into the models folder.
        var pretrainConfig = Config(("epochs", 2L), ("hidden", 8L));
        var (pretrain, pretrained) = await Fit(() => new TinySpec(), data.Handle, pretrainConfig);
        Assert.Equal(RunStatus.Completed, pretrain.Runs[0].Status);
        var weights = pretrained.Models.CopyWeights(1)!;
        var module = new TinySpec().CreateModel(pretrainConfig);
        module.load_state_dict(weights);
        module.save(Path.Combine(models, "tiny-pretrained.dat"));

        var handle = DataHandle.Builder(data.Directory).Train("train.csv").Validation("validation.csv").Models(models).Build();
        var created = new ConcurrentQueue<Dictionary<string, Tensor>>();
        var (result, s) = await Fit(() => new WarmStartSpec(created), handle,
            Config(("epochs", 1L), ("hidden", 8L), ("warm_start", "tiny-pretrained.dat")),
            Config(("epochs", 1L), ("hidden", 8L), ("warm_start", "missing.dat")));

        var warm = result.Runs[0];
        Assert.Equal(RunStatus.Completed, warm.Status);
        Assert.Equal(1, warm.EpochsDone);
        Assert.True(SameWeights(weights, Assert.Single(created)), "CreateModel started from the saved weights");
        Assert.False(SameWeights(weights, s.Models.CopyWeights(1)!), "the warm-started run trained on");
        var (coldLoss, warmLoss) = (pretrain.Runs[0].ValidationHistory[0]["loss"], warm.ValidationHistory[0]["loss"]);
        Assert.True(warmLoss < coldLoss, $"after one epoch the warm start's validation loss {warmLoss} is below the cold start's {coldLoss}");

        var missing = result.Runs[1];
        Assert.Equal(RunStatus.Failed, missing.Status);
        Assert.Equal("LoadModel", missing.Failure!.Method);
        Assert.Equal($"model tag 'missing.dat' not found in the models locator {models}", missing.Failure.Message);
    }
}
