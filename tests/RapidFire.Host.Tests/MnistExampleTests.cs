using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Data;
using RapidFire.Spec.Metrics;
using TorchSharp;

namespace RapidFire.Host.Tests;

/// <summary>The example spec, compiled from its file, driven through every MLSpec method on real rows.</summary>
public class MnistExampleTests
{
    private static readonly CompiledSpec Compiled = SpecCompiler.CompileFile(RepoPaths.MnistExample("MnistSpec.cs"));
    private static readonly DataHandle Data = DataHandle.Load(RepoPaths.MnistExample("datahandle.json"));

    private static Config Cfg(string modelType) => new([
        new("model_type", modelType), new("hidden", 32L), new("epochs", 1L), new("batch_size", 32L),
    ]);

    private static Minibatch Batch(MLSpec spec, Config cfg, Mode mode, int start, int size)
    {
        var table = Data.Open(mode);
        var rows = Enumerable.Range(start, size).Select(i => spec.RowPrep(table[i], cfg, mode)).ToList();
        return new Minibatch(spec.CollateFn(rows, cfg, mode), size);
    }

    [Theory]
    [InlineData("mlp")]
    [InlineData("cnn")]
    public void Each_model_type_trains_on_real_digits_and_its_loss_falls(string modelType)
    {
        torch.manual_seed(3);
        var spec = Compiled.CreateInstance();
        var cfg = Cfg(modelType);
        spec.InitializeRun("", cfg, Mode.Train);
        var model = spec.CreateModel(cfg);
        var optimizer = torch.optim.Adam(model.parameters(), lr: 0.003);
        var batch = Batch(spec, cfg, Mode.Train, 0, 32);
        Assert.Equal(new long[] { 32, 1, 28, 28 }, batch["images"].shape);

        var losses = new List<double>();
        for (var step = 0; step < 15; step++)
        {
            optimizer.zero_grad();
            var result = spec.ComputeForward(model, batch, cfg, Mode.Train).Checked(Mode.Train);
            result.Loss!.backward();
            optimizer.step();
            losses.Add(result.Loss.item<float>());
        }
        Assert.True(losses[^1] < losses[0] / 2, $"{modelType} loss went {losses[0]:F3} -> {losses[^1]:F3}");
    }

    [Fact]
    public void Validation_metrics_flow_through_ComputeMetrics_AggregateMetrics_and_the_named_metrics()
    {
        var spec = Compiled.CreateInstance();
        var cfg = Cfg("mlp");
        var model = spec.CreateModel(cfg);
        var table = new MinibatchMetrics();
        var top3 = NamedMetric.Parse("top3_accuracy");
        long correct = 0, count = 0;
        using (torch.no_grad())
            for (var start = 0; start < 64; start += 32)
            {
                var batch = Batch(spec, cfg, Mode.Validation, start, 32);
                var result = spec.ComputeForward(model, batch, cfg, Mode.Validation).Checked(Mode.Validation);
                table.Add(spec.ComputeMetrics(result.Loss, result.Outputs, batch, cfg, Mode.Validation));
                var (c, n) = top3.Count(result.Outputs!);
                correct += c;
                count += n;
            }
        Assert.Equal(64, count);
        Assert.InRange(correct, 0, 64);
        var aggregated = spec.AggregateMetrics(table.ToDataFrame(), cfg, Mode.Validation);
        Assert.InRange(aggregated["recall_8"], 0.0, 1.0);
    }

    [Fact]
    public void Predict_rows_have_no_label_and_ComputeForward_returns_outputs_only()
    {
        var spec = Compiled.CreateInstance();
        var cfg = Cfg("cnn");
        var batch = Batch(spec, cfg, Mode.Predict, 0, 8);
        Assert.Equal(["images"], batch.Keys);
        var result = spec.ComputeForward(spec.CreateModel(cfg), batch, cfg, Mode.Predict).Checked(Mode.Predict);
        Assert.Null(result.Loss);
        Assert.Equal(new long[] { 8 }, ((torch.Tensor)result.Outputs["predictions"]).shape);
    }
}
