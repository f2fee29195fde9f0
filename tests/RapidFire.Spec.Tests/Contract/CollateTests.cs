using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Contract;

public class CollateTests
{
    private static Tensor T(params float[] values) => torch.tensor(values);

    [Fact]
    public void Dictionaries_of_tensors_are_stacked_per_key()
    {
        var batch = new object[]
        {
            new Dictionary<string, object> { ["x"] = T(1, 2), ["y"] = torch.tensor(0L) },
            new Dictionary<string, object> { ["x"] = T(3, 4), ["y"] = torch.tensor(1L) },
            new Dictionary<string, object> { ["x"] = T(5, 6), ["y"] = torch.tensor(2L) },
        };
        var result = Assert.IsType<Dictionary<string, object>>(Collate.Default(batch));
        var x = Assert.IsType<Tensor>(result["x"], exactMatch: false);
        Assert.Equal(new long[] { 3, 2 }, x.shape);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, x.data<float>().ToArray());
        Assert.Equal(new long[] { 0, 1, 2 }, ((Tensor)result["y"]).data<long>().ToArray());
    }

    [Fact]
    public void Lists_tuples_and_nested_dictionaries_are_stacked_recursively()
    {
        var batch = new object[]
        {
            (T(1), new List<object> { T(10), new Dictionary<string, Tensor> { ["m"] = T(7, 7) } }),
            (T(2), new List<object> { T(20), new Dictionary<string, Tensor> { ["m"] = T(8, 8) } }),
        };
        var result = Assert.IsType<object[]>(Collate.Default(batch));
        Assert.Equal(new float[] { 1, 2 }, ((Tensor)result[0]).data<float>().ToArray());
        var inner = Assert.IsType<List<object>>(result[1]);
        Assert.Equal(new long[] { 2, 1 }, ((Tensor)inner[0]).shape);
        var nested = Assert.IsType<Dictionary<string, object>>(inner[1]);
        Assert.Equal(new long[] { 2, 2 }, ((Tensor)nested["m"]).shape);
    }

    [Fact]
    public void A_single_tensor_per_row_is_stacked()
    {
        var result = Assert.IsAssignableFrom<Tensor>(Collate.Default([T(1, 2), T(3, 4)]));
        Assert.Equal(new long[] { 2, 2 }, result.shape);
    }

    [Fact]
    public void A_null_member_is_an_error_that_names_the_key_and_the_row()
    {
        var batch = new object[]
        {
            new Dictionary<string, object?> { ["images"] = T(1), ["labels"] = torch.tensor(1L) },
            new Dictionary<string, object?> { ["images"] = T(2), ["labels"] = null },
        };
        var e = Assert.Throws<SpecException>(() => Collate.Default(batch));
        Assert.Equal("RowPrep", e.Method);
        Assert.Contains("member 'labels' of row 1 of the minibatch is null", e.Message);
    }

    [Fact]
    public void A_non_tensor_member_is_an_error_that_names_the_key_and_suggests_the_fix()
    {
        var batch = new object[]
        {
            new Dictionary<string, object> { ["images"] = T(1), ["labels"] = 3 },
            new Dictionary<string, object> { ["images"] = T(2), ["labels"] = 4 },
        };
        var e = Assert.Throws<SpecException>(() => Collate.Default(batch));
        Assert.Contains("member 'labels' of row 0 of the minibatch is a Int32, not a tensor", e.Message);
        Assert.Contains("torch.tensor", e.Message);
        Assert.Contains("CollateFn", e.Message);
    }

    [Fact]
    public void A_nested_member_is_named_by_its_path()
    {
        var batch = new object[] { new List<object> { T(1), new Dictionary<string, object> { ["mask"] = "no" } } };
        var e = Assert.Throws<SpecException>(() => Collate.Default(batch));
        Assert.Contains("member '[1].mask' of row 0", e.Message);
    }

    [Fact]
    public void Missing_keys_and_mismatched_shapes_name_the_key()
    {
        var missing = new object[]
        {
            new Dictionary<string, object> { ["a"] = T(1), ["b"] = T(1) },
            new Dictionary<string, object> { ["a"] = T(1), ["c"] = T(1) },
        };
        Assert.Contains("member 'b' of row 1 of the minibatch is missing", Assert.Throws<SpecException>(() => Collate.Default(missing)).Message);

        var shapes = new object[]
        {
            new Dictionary<string, object> { ["tokens"] = T(1, 2, 3) },
            new Dictionary<string, object> { ["tokens"] = T(1, 2) },
        };
        var e = Assert.Throws<SpecException>(() => Collate.Default(shapes));
        Assert.Contains("member 'tokens' of row 1 of the minibatch has shape [2], but row 0 has [3]", e.Message);
    }
}
