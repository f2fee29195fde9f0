using RapidFire.Actors.Metrics;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using TorchSharp;

namespace RapidFire.Actors.Tests;

public class DataParallelTests
{
    [Theory]
    [InlineData(10, 4, new[] { 3, 3, 2, 2 })]
    [InlineData(16, 2, new[] { 8, 8 })]
    [InlineData(7, 2, new[] { 4, 3 })]
    [InlineData(2, 4, new[] { 1, 1 })]
    [InlineData(5, 1, new[] { 5 })]
    public void A_minibatch_is_cut_into_contiguous_shards_that_differ_by_at_most_one_row(int rows, int devices, int[] sizes)
    {
        var positions = Enumerable.Range(100, rows).ToArray();
        var shards = DataParallel.Split(positions, devices);
        Assert.Equal(sizes, shards.Select(s => s.Length));
        Assert.Equal(positions, shards.SelectMany(s => s));
    }

    [Fact]
    public void Shard_weights_are_each_shards_share_of_the_examples()
    {
        Assert.Equal([4 / 7.0, 3 / 7.0], DataParallel.Weights([4, 3]));
        Assert.Throws<ArgumentException>(() => DataParallel.Weights([0, 0]));
    }

    [Theory]
    [InlineData(null, null)]
    [InlineData("auto", null)]
    [InlineData(2L, 2)]
    public void Num_devices_is_auto_or_a_count(object? value, int? expected)
    {
        var cfg = new Config(value is null ? [] : [new KeyValuePair<string, object?>("num_devices", value)]);
        Assert.Equal(expected, DataParallel.Requested(cfg));
    }

    [Theory]
    [InlineData(0L, "num_devices: must be \"auto\" or a whole number of devices >= 1, got 0")]
    [InlineData("two", "num_devices: must be \"auto\" or a whole number of devices >= 1, got \"two\"")]
    [InlineData(1.5, "got 1.5")]
    public void A_bad_num_devices_names_the_knob_and_the_value(object value, string message)
    {
        var cfg = new Config([new KeyValuePair<string, object?>("num_devices", value)]);
        Assert.Contains(message, Assert.Throws<ConfigException>(() => DataParallel.Requested(cfg)).Message);
        Assert.StartsWith("run 3: num_devices", DataParallel.Problem("run 3", cfg, 2));
    }

    [Fact]
    public void Asking_for_more_devices_than_the_fit_has_names_the_run_and_the_devices()
    {
        var cfg = new Config([new KeyValuePair<string, object?>("num_devices", 4L)]);
        Assert.Equal("run 2: num_devices = 4, but the fit has 2 devices (--devices)", DataParallel.Problem("run 2", cfg, 2));
        Assert.Null(DataParallel.Problem("run 2", cfg, 4));
    }

    [Fact]
    public void Across_shards_tensor_metrics_are_summed_and_other_metrics_appended_into_one_list_per_minibatch()
    {
        using var a = torch.tensor(3.0);
        using var b = torch.tensor(4.0);
        var shard0 = MetricValues.FromParts([new Dictionary<string, object> { ["correct"] = a, ["names"] = "x" }]);
        var shard1 = MetricValues.FromParts([new Dictionary<string, object> { ["correct"] = b, ["names"] = "y" }]);
        var merged = MetricValues.Merge([shard0, shard1]);
        Assert.Equal(7.0, merged.Numbers["correct"]);
        Assert.Equal(["x", "y"], merged.Objects["names"]);
        // The same as ComputeMetrics computed as two parts at once, and one row of the table AggregateMetrics sees.
        var parts = MetricValues.FromParts([new Dictionary<string, object> { ["correct"] = a, ["names"] = "x" }, new Dictionary<string, object> { ["correct"] = b, ["names"] = "y" }]);
        Assert.Equal(merged.Numbers, parts.Numbers);
        Assert.Equal(merged.Objects["names"], parts.Objects["names"]);
        var table = new MinibatchMetrics();
        table.Add(merged);
        Assert.Equal(1, table.Count);
        Assert.Equal(7.0, table.Sums()["correct"]);
        var mixed = MetricValues.FromParts([new Dictionary<string, object> { ["correct"] = "9" }]);
        Assert.Contains("'correct' is a tensor in one part of the minibatch but not in another",
            Assert.Throws<SpecException>(() => MetricValues.Merge([shard0, mixed])).Message);
    }

    [Fact]
    public void A_minibatch_of_shards_has_the_weighted_mean_loss_and_the_summed_counts()
    {
        var named = (long c, long n) => new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(c, n) };
        var combined = StepResult.Combine([
            (new StepResult(1.0, named(3, 4), MetricValues.Empty), 4),
            (new StepResult(2.0, named(1, 3), MetricValues.Empty), 3),
        ]);
        Assert.Equal((1.0 * 4 + 2.0 * 3) / 7, combined.Loss!.Value, 12);
        Assert.Equal(new NamedCount(4, 7), combined.Named["top1_accuracy"]);
    }

    private static RunModel Replica(long seed) => RunModel.Create(new TinySpec(), Tiny, seed);

    private static readonly Config Tiny = new([
        new("hidden", 3L), new("batch_size", 4L), new("epochs", 1L),
        new("optimizer", new Dictionary<string, object?> { ["name"] = "SGD", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.1 } }),
    ]);

    private static void SetGradients(RunModel model, double value)
    {
        foreach (var p in model.Model.parameters()) p.grad = torch.full_like(p, value);
    }

    [Fact]
    public void Every_replica_gets_the_shard_weighted_average_of_the_gradients_and_a_replica_without_a_shard_too()
    {
        using var a = Replica(1);
        using var b = Replica(1);
        using var idle = Replica(1);
        SetGradients(a, 1.0);
        SetGradients(b, 4.0);
        SetGradients(idle, 100.0); // a stale gradient from an earlier step
        ReplicaSync.AverageGradients([a, b, idle], DataParallel.Weights([3, 1]));
        foreach (var model in new[] { a, b, idle })
            foreach (var p in model.Model.parameters())
                Assert.True(p.grad!.allclose(torch.full_like(p, 0.75 * 1 + 0.25 * 4)), "every replica holds 1.75");
    }

    [Fact]
    public void Replicas_that_differ_are_named_by_parameter_and_gap()
    {
        using var leader = Replica(1);
        using var same = Replica(1);
        Assert.Null(ReplicaSync.Divergence(leader, same));
        using (torch.no_grad()) same.Model.parameters().Last().add_(0.5);
        Assert.Equal("parameter '3.bias' differs from the leader's by up to 0.5", ReplicaSync.Divergence(leader, same));
    }

    [Theory]
    [InlineData("", null)]
    [InlineData("rapidfire.check-replicas = on", true)]
    [InlineData("rapidfire.check-replicas = off", false)]
    [InlineData("rapidfire.check-replicas = auto", null)]
    public void The_replica_check_is_a_setting_on_in_debug_builds_by_default(string hocon, bool? expected)
    {
        var settings = RuntimeSettings.From(Akka.Configuration.ConfigurationFactory.ParseString(hocon));
        Assert.Equal(expected, settings.CheckReplicas);
#if DEBUG
        Assert.Equal(expected ?? true, settings.ChecksReplicas);
#else
        Assert.Equal(expected ?? false, settings.ChecksReplicas);
#endif
        var bad = Akka.Configuration.ConfigurationFactory.ParseString("rapidfire.check-replicas = sometimes");
        Assert.Contains("check-replicas: must be auto, on or off, got 'sometimes'", Assert.Throws<ConfigException>(() => RuntimeSettings.From(bad)).Message);
    }
}
