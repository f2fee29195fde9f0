using RapidFire.Actors.Evaluation;
using RapidFire.Spec;
using TorchSharp;

namespace RapidFire.Actors.Tests.Evaluation;

public class PredictionTableTests
{
    [Fact]
    public void A_scalar_per_row_is_one_column_and_a_vector_one_column_per_element()
    {
        var table = new PredictionTable();
        using var predictions = torch.tensor(new long[] { 3, 7 });
        using var logits = torch.tensor(new float[] { 0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f }).reshape(2, 3);
        table.Add([10, 11], new Dictionary<string, object> { ["predictions"] = predictions, ["logits"] = logits });
        using var more = torch.tensor(new long[] { 1 });
        using var moreLogits = torch.tensor(new float[] { 6, 7, 8 }).reshape(1, 3);
        table.Add([12], new Dictionary<string, object> { ["logits"] = moreLogits, ["predictions"] = more });

        Assert.Equal(["id", "predictions", "logits_0", "logits_1", "logits_2"], table.ColumnNames);
        Assert.Equal([10L, 11L, 12L], table.Ids);
        Assert.Equal(PredictionType.Int64, table.Columns[0].Type);
        Assert.Equal([3L, 7L, 1L], table.Columns[0].Longs);
        Assert.Equal(PredictionType.Double, table.Columns[1].Type);
        Assert.Equal(5.5, table.Columns[1].Value(1, 2));
        Assert.Equal(8.0, table.Columns[1].Value(2, 2));
    }

    [Fact]
    public void Higher_ranks_flatten_row_major_lists_give_one_value_per_row_and_integers_widen_to_doubles()
    {
        var table = new PredictionTable();
        using var grid = torch.arange(8, dtype: torch.int32).reshape(2, 2, 2);
        using var flag = torch.tensor(new[] { true, false });
        table.Add([1, 2], new Dictionary<string, object>
        {
            ["grid"] = grid, ["flag"] = flag, ["name"] = new List<string> { "a", "b" }, ["score"] = new[] { 1, 2 },
        });
        table.Add([3], new Dictionary<string, object>
        {
            ["grid"] = torch.arange(4, dtype: torch.int32).reshape(1, 2, 2), ["flag"] = torch.tensor(new[] { true }),
            ["name"] = new[] { "c" }, ["score"] = new[] { 2.5 },
        });

        Assert.Equal(["id", "grid_0", "grid_1", "grid_2", "grid_3", "flag", "name", "score"], table.ColumnNames);
        Assert.Equal(6L, table.Columns[0].Value(1, 2));
        Assert.Equal([1L, 0L, 1L], table.Columns[1].Longs);
        Assert.Equal(["a", "b", "c"], table.Columns[2].Strings);
        Assert.Equal(PredictionType.Double, table.Columns[3].Type);
        Assert.Equal([1.0, 2.0, 2.5], table.Columns[3].Doubles);
    }

    [Fact]
    public void Outputs_that_do_not_fit_a_table_fail_naming_the_key()
    {
        static string Fail(Action add) => Assert.Throws<SpecException>(add).Message;

        using var scalar = torch.tensor(1.0f);
        Assert.Contains("predict output 'p' has shape [], but predict outputs must be 2 (the minibatch's rows) long",
            Fail(() => new PredictionTable().Add([1, 2], new Dictionary<string, object> { ["p"] = scalar })));
        Assert.Contains("predict output 'p' is a list of 3 items, but predict outputs must hold one per row (2)",
            Fail(() => new PredictionTable().Add([1, 2], new Dictionary<string, object> { ["p"] = new[] { 1, 2, 3 } })));
        Assert.Contains("would be written as column 'id'",
            Fail(() => new PredictionTable().Add([1], new Dictionary<string, object> { ["id"] = new[] { 1 } })));

        var table = new PredictionTable();
        table.Add([1], new Dictionary<string, object> { ["tokens"] = torch.zeros(1, 5) });
        Assert.Contains("predict output 'tokens' has 7 values per row in this minibatch but 5 values in earlier ones",
            Fail(() => table.Add([2], new Dictionary<string, object> { ["tokens"] = torch.zeros(1, 7) })));
        Assert.Contains("predict outputs must have the same keys in every minibatch",
            Fail(() => table.Add([2], new Dictionary<string, object> { ["other"] = torch.zeros(1, 5) })));
    }
}
