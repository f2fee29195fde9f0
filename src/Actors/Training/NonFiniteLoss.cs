using System.Collections;
using System.Globalization;
using System.Runtime.CompilerServices;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Training;

/// <summary>Where a minibatch came from, for errors that name its rows.</summary>
/// <param name="Index">Its 0-based position in its chunk (training) or in its evaluation pass.</param>
/// <param name="RowIds">The ESF ids of its rows, in minibatch order.</param>
public sealed record MinibatchOrigin(int Index, IReadOnlyList<long> RowIds);

/// <summary>
/// The failure of a step whose loss is not finite, naming the minibatch (its position and its rows) and the rows of it
/// that hold a non-finite input value. The inputs are read only once the loss is known to be non-finite, so the normal
/// path costs nothing; the message is one line and lists at most <see cref="ListedIds"/> ids.
/// </summary>
public static class NonFiniteLoss
{
    /// <summary>The most row ids a message lists; more are counted.</summary>
    public const int ListedIds = 10;

    /// <summary>The most input names a message lists; more are counted.</summary>
    public const int ListedInputs = 5;

    /// <summary>The failure of a step whose loss is <paramref name="loss"/> on <paramref name="batch"/>.</summary>
    public static RunFailure Failure(double loss, Minibatch batch, MinibatchOrigin? origin, Mode mode)
    {
        if (origin is null || origin.RowIds.Count != batch.Size) return new RunFailure("loss", $"the loss is {Show(loss)}");
        var inputs = NonFiniteInputs(batch);
        var faulty = inputs.Select(i => (origin.RowIds[i.Row], i.Inputs)).ToList();
        return new RunFailure("loss", Message(loss, origin.Index, mode == Mode.Train, origin.RowIds, faulty));
    }

    /// <summary>
    /// The message: <c>the loss is NaN in minibatch 3 of the chunk; row id 100 holds a non-finite input (x); its rows:
    /// 64 ids from 37 to 2999</c>.
    /// </summary>
    /// <param name="loss">The loss.</param>
    /// <param name="index">The minibatch's 0-based position.</param>
    /// <param name="inChunk">Whether the position counts in a training chunk (else in an evaluation pass).</param>
    /// <param name="rowIds">The ids of the minibatch's rows.</param>
    /// <param name="faulty">The rows holding a non-finite input value, with the names of those inputs.</param>
    public static string Message(double loss, int index, bool inChunk, IReadOnlyList<long> rowIds, IReadOnlyList<(long RowId, IReadOnlyList<string> Inputs)> faulty)
    {
        var where = string.Create(CultureInfo.InvariantCulture, $"minibatch {index + 1}{(inChunk ? " of the chunk" : "")}");
        var names = faulty.SelectMany(f => f.Inputs).Distinct().ToList();
        var culprits = faulty.Count switch
        {
            0 => "the inputs of its rows are all finite",
            1 => $"row id {Ids(faulty.Select(f => f.RowId).ToList())} holds a non-finite input ({Names(names)})",
            _ => $"row ids {Ids(faulty.Select(f => f.RowId).ToList())} hold non-finite inputs ({Names(names)})",
        };
        var rows = rowIds.Count <= ListedIds
            ? $"ids {Ids(rowIds)}"
            : string.Create(CultureInfo.InvariantCulture, $"{rowIds.Count} ids from {rowIds.Min()} to {rowIds.Max()}");
        return $"the loss is {Show(loss)} in {where}; {culprits}; its rows: {rows}";
    }

    /// <summary>
    /// The rows (positions in the minibatch) whose floating tensors hold a NaN or an infinity, with the names of those
    /// tensors (<c>x</c>, <c>[0]</c>, <c>images.left</c>); tensors whose first dimension is not the minibatch's rows are
    /// not read.
    /// </summary>
    public static IReadOnlyList<(int Row, IReadOnlyList<string> Inputs)> NonFiniteInputs(Minibatch batch)
    {
        using var scope = torch.NewDisposeScope();
        var found = new SortedDictionary<int, List<string>>();
        foreach (var (name, tensor) in Named(batch.Value, ""))
        {
            if (!tensor.is_floating_point() || tensor.dim() == 0 || tensor.shape[0] != batch.Size || tensor.numel() == 0) continue;
            var bad = tensor.detach().isfinite().logical_not().reshape(batch.Size, -1).any(1).cpu();
            var rows = bad.data<bool>().ToArray();
            for (var row = 0; row < rows.Length; row++)
                if (rows[row])
                {
                    if (!found.TryGetValue(row, out var inputs)) found[row] = inputs = [];
                    inputs.Add(name.Length == 0 ? "the minibatch" : name);
                }
        }
        return found.Select(kv => (kv.Key, (IReadOnlyList<string>)kv.Value)).ToList();
    }

    private static IEnumerable<(string Name, Tensor Tensor)> Named(object? value, string path)
    {
        switch (value)
        {
            case Tensor t:
                yield return (path, t);
                break;
            case IDictionary map:
                foreach (DictionaryEntry entry in map)
                    foreach (var named in Named(entry.Value, path.Length == 0 ? $"{entry.Key}" : $"{path}.{entry.Key}")) yield return named;
                break;
            case ITuple tuple:
                for (var i = 0; i < tuple.Length; i++)
                    foreach (var named in Named(tuple[i], string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]"))) yield return named;
                break;
            case IEnumerable items and not string:
                var index = 0;
                foreach (var item in items)
                    foreach (var named in Named(item, string.Create(CultureInfo.InvariantCulture, $"{path}[{index++}]"))) yield return named;
                break;
        }
    }

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Ids(IReadOnlyList<long> ids) =>
        ids.Count <= ListedIds
            ? string.Join(", ", ids.Select(id => id.ToString(CultureInfo.InvariantCulture)))
            : string.Create(CultureInfo.InvariantCulture, $"{string.Join(", ", ids.Take(ListedIds))} and {ids.Count - ListedIds} more");

    private static string Names(IReadOnlyList<string> names) =>
        names.Count <= ListedInputs ? string.Join(", ", names) : $"{string.Join(", ", names.Take(ListedInputs))} and {names.Count - ListedInputs} more";
}
