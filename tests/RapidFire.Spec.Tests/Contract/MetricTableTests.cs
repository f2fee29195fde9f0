using Microsoft.Data.Analysis;
using RapidFire.Spec.Metrics;
using TorchSharp;

namespace RapidFire.Spec.Tests.Contract;

public class MetricTableTests
{
    [Fact]
    public void Tensor_metrics_become_one_double_column_row_per_minibatch_and_sum_by_default()
    {
        var table = new MinibatchMetrics();
        table.Add(new Dictionary<string, object> { ["correct"] = torch.tensor(3L), ["total"] = torch.tensor(new long[] { 4 }) });
        table.Add(new Dictionary<string, object> { ["correct"] = torch.tensor(1L), ["total"] = torch.tensor(new long[] { 4 }) });
        var frame = table.ToDataFrame();
        Assert.Equal(2, frame.Rows.Count);
        Assert.IsType<DoubleDataFrameColumn>(frame.Columns["correct"]);
        Assert.Equal(new double?[] { 3, 1 }, ((DoubleDataFrameColumn)frame.Columns["correct"]).ToArray());
        Assert.Equal(4.0, table.Sums()["correct"]);
        Assert.Equal(8.0, table.Sums()["total"]);
    }

    [Fact]
    public void Non_tensor_metrics_are_appended_to_a_list_per_minibatch()
    {
        var table = new MinibatchMetrics();
        table.AddParts([
            new Dictionary<string, object> { ["boxes"] = "shard0", ["n"] = torch.tensor(2.0) },
            new Dictionary<string, object> { ["boxes"] = "shard1", ["n"] = torch.tensor(3.0) },
        ]);
        table.Add(new Dictionary<string, object> { ["boxes"] = "next", ["n"] = torch.tensor(1.0) });
        var frame = table.ToDataFrame();
        var boxes = Assert.IsType<ObjectDataFrameColumn>(frame.Columns["boxes"]);
        Assert.Equal(new object[] { "shard0", "shard1" }, Assert.IsAssignableFrom<IReadOnlyList<object>>(boxes[0]));
        Assert.Equal(new object[] { "next" }, Assert.IsAssignableFrom<IReadOnlyList<object>>(boxes[1]));
        Assert.Equal(new double?[] { 5, 1 }, ((DoubleDataFrameColumn)frame.Columns["n"]).ToArray());
        Assert.False(table.Sums().ContainsKey("boxes"));
    }

    [Fact]
    public void A_multi_element_tensor_metric_names_the_key()
    {
        var e = Assert.Throws<SpecException>(() => new MinibatchMetrics().Add(new Dictionary<string, object> { ["acc"] = torch.ones(3) }));
        Assert.Equal("ComputeMetrics", e.Method);
        Assert.Contains("metric 'acc' is a tensor of shape [3]", e.Message);
    }

    [Fact]
    public void A_metric_missing_from_a_minibatch_is_null_there()
    {
        var table = new MinibatchMetrics();
        table.Add(new Dictionary<string, object> { ["a"] = torch.tensor(1.0) });
        table.Add(new Dictionary<string, object> { ["b"] = torch.tensor(2.0) });
        var frame = table.ToDataFrame();
        Assert.Equal(new double?[] { 1, null }, ((DoubleDataFrameColumn)frame.Columns["a"]).ToArray());
        Assert.Equal(new double?[] { null, 2 }, ((DoubleDataFrameColumn)frame.Columns["b"]).ToArray());
    }

    [Fact]
    public void Epoch_rows_become_a_table_with_one_column_per_key()
    {
        var frame = MetricTables.FromRows([
            new Dictionary<string, double> { ["loss"] = 0.9, ["top1_accuracy"] = 0.5 },
            new Dictionary<string, double> { ["loss"] = 0.4, ["top1_accuracy"] = 0.8 },
        ]);
        Assert.Equal(2, frame.Rows.Count);
        Assert.Equal(0.8, frame.Columns["top1_accuracy"][1]);
    }
}
