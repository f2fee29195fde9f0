using RapidFire.Spec.Metrics;
using TorchSharp;

namespace RapidFire.Spec.Tests.Contract;

public class NamedMetricTests
{
    [Theory]
    [InlineData("top1_accuracy", 1)]
    [InlineData("top5_accuracy", 5)]
    [InlineData("top1-accuracy", 1)]
    [InlineData("Top3_Accuracy", 3)]
    public void TopK_names_parse_for_any_K(string name, int k)
    {
        Assert.True(NamedMetric.TryParse(name, out var metric));
        Assert.Equal(k, metric.K);
        Assert.Equal($"top{k}_accuracy", metric.Name);
    }

    [Theory]
    [InlineData("top0_accuracy")]
    [InlineData("accuracy")]
    [InlineData("top_accuracy")]
    [InlineData("f1")]
    public void Unknown_names_are_refused_with_the_known_ones(string name)
    {
        Assert.False(NamedMetric.TryParse(name, out _));
        var e = Assert.Throws<ConfigException>(() => NamedMetric.Parse(name));
        Assert.Contains($"named_metrics: unknown named metric '{name}'", e.Message);
        Assert.Contains("top1_accuracy", e.Message);
    }

    [Fact]
    public void Top1_accuracy_counts_predictions_equal_to_targets()
    {
        var outputs = new Dictionary<string, object?>
        {
            ["predictions"] = torch.tensor(new long[] { 1, 2, 3, 4 }),
            ["targets"] = torch.tensor(new long[] { 1, 0, 3, 0 }),
        };
        Assert.Equal((2L, 4L), NamedMetric.Parse("top1_accuracy").Count(outputs));
    }

    [Fact]
    public void TopK_accuracy_counts_targets_among_the_K_highest_logits()
    {
        var logits = torch.tensor(new float[,] { { 0.1f, 0.5f, 0.4f }, { 0.7f, 0.2f, 0.1f }, { 0.2f, 0.3f, 0.5f } });
        var outputs = new Dictionary<string, object?> { ["logits"] = logits, ["targets"] = torch.tensor(new long[] { 2, 2, 0 }) };
        Assert.Equal((1L, 3L), NamedMetric.Parse("top2_accuracy").Count(outputs)); // row 0: {1,2} has 2
        Assert.Equal((3L, 3L), NamedMetric.Parse("top3_accuracy").Count(outputs));
    }

    [Fact]
    public void A_missing_reserved_output_key_names_the_metric_and_the_key()
    {
        var outputs = new Dictionary<string, object?> { ["predictions"] = torch.tensor(new long[] { 1 }) };
        var e = Assert.Throws<SpecException>(() => NamedMetric.Parse("top1_accuracy").Count(outputs));
        Assert.Equal("ComputeForward", e.Method);
        Assert.Contains("named metric top1_accuracy needs the output key 'targets'", e.Message);

        var noLogits = new Dictionary<string, object?> { ["predictions"] = torch.tensor(new long[] { 1 }), ["targets"] = torch.tensor(new long[] { 1 }) };
        Assert.Contains("named metric top5_accuracy needs the output key 'logits'",
            Assert.Throws<SpecException>(() => NamedMetric.Parse("top5_accuracy").Count(noLogits)).Message);
    }

    [Fact]
    public void K_larger_than_the_number_of_classes_is_an_error()
    {
        var outputs = new Dictionary<string, object?> { ["logits"] = torch.zeros(2, 3), ["targets"] = torch.tensor(new long[] { 0, 1 }) };
        Assert.Contains("has 3 classes, fewer than K = 5",
            Assert.Throws<SpecException>(() => NamedMetric.Parse("top5_accuracy").Count(outputs)).Message);
    }
}
