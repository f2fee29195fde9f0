using RapidFire.Actors.Training;
using RapidFire.Spec;
using TorchSharp;

namespace RapidFire.Actors.Tests;

/// <summary>The message of a non-finite loss: the minibatch, its rows, and the rows holding a non-finite input.</summary>
public class NonFiniteLossTests
{
    private static readonly IReadOnlyList<string> X = ["x"];

    [Fact]
    public void A_nan_loss_names_the_minibatch_the_row_that_holds_a_nan_input_and_the_span_of_its_rows()
    {
        var ids = Enumerable.Range(0, 64).Select(i => 37L + i * 46).ToList();
        Assert.Equal("the loss is NaN in minibatch 3 of the chunk; row id 100 holds a non-finite input (x); its rows: 64 ids from 37 to 2935",
            NonFiniteLoss.Message(double.NaN, 2, inChunk: true, ids, [(100, X)]));
    }

    [Fact]
    public void A_few_rows_are_listed_and_many_are_counted_so_the_message_stays_one_short_line()
    {
        IReadOnlyList<string> xy = ["x", "mask"];
        var faulty = Enumerable.Range(1, 12).Select(i => ((long)i, i == 5 ? xy : X)).ToList();
        var message = NonFiniteLoss.Message(double.PositiveInfinity, 0, inChunk: false, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], faulty);
        Assert.Equal("the loss is Infinity in minibatch 1; row ids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more hold non-finite inputs (x, mask); " +
                     "its rows: 12 ids from 1 to 12", message);
        Assert.Equal("the loss is NaN in minibatch 2 of the chunk; the inputs of its rows are all finite; its rows: ids 7, 3, 9",
            NonFiniteLoss.Message(double.NaN, 1, inChunk: true, [7, 3, 9], []));
    }

    [Fact]
    public void The_rows_holding_a_nan_or_an_infinity_are_found_in_every_floating_tensor_of_the_minibatch()
    {
        using var scope = torch.NewDisposeScope();
        var x = new float[3 * 2 * 2];
        x[1 * 4 + 3] = float.NaN;                                                       // row 1
        var mask = new double[] { 0, double.NegativeInfinity, 0 };                      // row 1 again
        var extra = new float[] { 1, 2, 3, 4, float.PositiveInfinity, 6 };              // row 2 of [0]
        var batch = new Minibatch(new Dictionary<string, object>
        {
            ["x"] = torch.tensor(x, [3, 2, 2]),
            ["y"] = torch.tensor(new long[] { 0, 1, 1 }),                             // not floating: never read
            ["mask"] = torch.tensor(mask),
            ["pair"] = new object[] { torch.tensor(extra, [3, 2]) },
            ["scale"] = torch.tensor(new[] { float.NaN }),                              // not one value per row: not read
        }, 3);

        var found = NonFiniteLoss.NonFiniteInputs(batch);

        Assert.Equal([(1, "x, mask"), (2, "pair[0]")], found.Select(f => (f.Row, string.Join(", ", f.Inputs))));
        var failure = NonFiniteLoss.Failure(double.NaN, batch, new MinibatchOrigin(0, [40, 41, 42]), Mode.Validation);
        Assert.Equal("loss", failure.Method);
        Assert.Equal("the loss is NaN in minibatch 1; row ids 41, 42 hold non-finite inputs (x, mask, pair[0]); its rows: ids 40, 41, 42", failure.Message);
    }
}
