using RapidFire.Actors.Metrics;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Tests;

/// <summary>Epoch metrics from minibatch records, and what the default aggregation leaves out.</summary>
public class EpochMetricsTests
{
    /// <summary>A spec that keeps MLSpec's default AggregateMetrics.</summary>
    private sealed class DefaultAggregation : MLSpec
    {
        public override object RowPrep(Row row, Config cfg, Mode mode) => throw new NotSupportedException();

        public override nn.Module CreateModel(Config cfg) => throw new NotSupportedException();

        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode) => throw new NotSupportedException();
    }

    private static readonly Config Cfg = Config.FromJson("""{"epochs":1,"batch_size":8,"optimizer":{"name":"Adam","args":{"lr":0.01}}}""");

    private static MinibatchRecord Record(int step, string? objectKey) => new(1, Mode.Train, 0, 0, step, 8, 0.5, new Dictionary<string, NamedCount>(),
        new MetricValues(new Dictionary<string, double> { ["correct"] = 6 },
            objectKey is null ? new Dictionary<string, IReadOnlyList<object>>() : new Dictionary<string, IReadOnlyList<object>> { [objectKey] = ["a note"] }));

    [Fact]
    public void The_default_aggregation_names_the_non_tensor_metrics_it_drops_and_a_spec_that_aggregates_them_drops_none()
    {
        var records = new[] { Record(1, "notes"), Record(2, "notes"), Record(3, "labels") };

        Assert.Equal(["labels", "notes"], EpochMetrics.DroppedByDefault(records, new DefaultAggregation()));
        Assert.Empty(EpochMetrics.DroppedByDefault([Record(1, null)], new DefaultAggregation()));
        Assert.Empty(EpochMetrics.DroppedByDefault(records, new TinySpec())); // it overrides AggregateMetrics
        Assert.Equal(18, EpochMetrics.Close(records, new DefaultAggregation(), Cfg, Mode.Train)["correct"]); // the tensor metric is summed
    }
}
