using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;

namespace RapidFire.Actors.Data;

/// <summary>
/// The user's preprocessing of one minibatch: <c>RowPrep</c> for each row, then <c>CollateFn</c>. The DataLoaderActors
/// run it for training and validation; test and predict run it directly.
/// </summary>
public static class MinibatchPreparation
{
    /// <summary>
    /// Prepares the minibatch of <paramref name="rows"/> (positions in <paramref name="table"/>). The per-row tensors die
    /// with the call; the collated ones are the caller's to dispose. A failure is a <see cref="RunFailureException"/>
    /// naming the method, and for <c>RowPrep</c> the row id.
    /// </summary>
    public static PreparedMinibatch Prepare(MLSpec spec, EsfTable table, IReadOnlyList<int> rows, Config cfg, Mode mode)
    {
        using var scope = torch.NewDisposeScope();
        var items = new List<object>(rows.Count);
        var ids = new long[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            ids[i] = table.Ids[rows[i]];
            items.Add(RowPrep(spec, table[rows[i]], cfg, mode));
        }
        return Collated(spec, items, ids, cfg, mode, scope);
    }

    /// <summary>
    /// <c>CollateFn</c> over examples prepared in <paramref name="scope"/>: the collated tensors leave the scope (they are
    /// the caller's), the examples die with it.
    /// </summary>
    public static PreparedMinibatch Collated(MLSpec spec, IReadOnlyList<object> items, long[] ids, Config cfg, Mode mode, DisposeScope scope)
    {
        var collated = Collate(spec, items, cfg, mode);
        foreach (var tensor in TensorTree.Tensors(collated))
            if (scope.Contains(tensor)) scope.Detach(tensor);
        return new PreparedMinibatch(new Minibatch(collated, items.Count), ids);
    }

    /// <summary>The user's <c>CollateFn</c> over prepared examples (watched: see <see cref="CallWatch"/>).</summary>
    public static object Collate(MLSpec spec, IReadOnlyList<object> items, Config cfg, Mode mode)
    {
        var before = CallWatch.Enter("CollateFn");
        try
        {
            return SpecCall.Run("CollateFn", () => spec.CollateFn(items, cfg, mode));
        }
        finally
        {
            CallWatch.Leave(before);
        }
    }

    /// <summary>The user's <c>RowPrep</c> of one row; a failure names the method and the row id.</summary>
    public static object RowPrep(MLSpec spec, Row row, Config cfg, Mode mode)
    {
        var before = CallWatch.Enter("RowPrep", row.Id);
        try
        {
            return SpecCall.Run("RowPrep", () => spec.RowPrep(row, cfg, mode) ?? throw new SpecException("RowPrep", "returned null"));
        }
        catch (RunFailureException e)
        {
            throw new RunFailureException(e.Failure with { RowId = row.Id }, e.InnerException);
        }
        finally
        {
            CallWatch.Leave(before);
        }
    }
}
