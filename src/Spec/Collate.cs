using System.Collections;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec;

/// <summary>The default collate: what PyTorch's <c>default_collate</c> does for tensors, in C#.</summary>
public static class Collate
{
    /// <summary>
    /// Stacks the values <c>RowPrep</c> returned for a minibatch along a new first dimension, recursively inside
    /// dictionaries (to a <c>Dictionary&lt;string, object&gt;</c>), lists (to a <c>List&lt;object&gt;</c>) and tuples
    /// (to an <c>object[]</c>). Every leaf must be a tensor of the same shape in every row. A null or non-tensor
    /// member, a missing key or a shape mismatch is a <see cref="SpecException"/> of <c>RowPrep</c> that names
    /// the member (such as <c>labels</c> or <c>[1].mask</c>) and the row of the minibatch.
    /// </summary>
    public static object Default(IReadOnlyList<object> batch)
    {
        if (batch.Count == 0) throw new ArgumentException("cannot collate an empty minibatch", nameof(batch));
        return CollateMember(batch, "");
    }

    private static object CollateMember(IReadOnlyList<object?> items, string path)
    {
        var first = items[0];
        switch (first)
        {
            case null:
                throw Fault(path, 0, "is null");
            case Tensor:
                var tensors = new Tensor[items.Count];
                for (var i = 0; i < items.Count; i++)
                    tensors[i] = items[i] as Tensor ?? throw Fault(path, i, Describe(items[i]));
                CheckShapes(tensors, path);
                return torch.stack(tensors, 0);
            case IDictionary map:
                var result = new Dictionary<string, object>(map.Count);
                foreach (var key in map.Keys)
                {
                    var name = key as string ?? throw Fault(path, 0, $"has a non-string key {key}");
                    var member = Join(path, name);
                    var column = new object?[items.Count];
                    for (var i = 0; i < items.Count; i++)
                    {
                        if (items[i] is not IDictionary row) throw Fault(path, i, $"is a {Kind(items[i])}, but row 0 is a dictionary");
                        if (!row.Contains(name)) throw Fault(member, i, "is missing (row 0 has it)");
                        if (row.Count != map.Count) throw Fault(path, i, $"has {row.Count} keys, but row 0 has {map.Count}");
                        column[i] = row[name];
                    }
                    result[name] = CollateMember(column, member);
                }
                return result;
            case ITuple tuple:
                return CollateSequence(items, path, tuple.Length, (o, j) => ((ITuple)o)[j], o => o is ITuple t ? t.Length : -1).ToArray();
            case IList list:
                return CollateSequence(items, path, list.Count, (o, j) => ((IList)o)[j], o => o is IList l ? l.Count : -1);
            default:
                throw Fault(path, 0, Describe(first));
        }
    }

    private static List<object> CollateSequence(IReadOnlyList<object?> items, string path, int length,
        Func<object, int, object?> at, Func<object?, int> lengthOf)
    {
        for (var i = 1; i < items.Count; i++)
            if (lengthOf(items[i]) != length)
                throw Fault(path, i, $"has {Math.Max(lengthOf(items[i]), 0)} members (or another type), but row 0 has {length}");
        var result = new List<object>(length);
        for (var j = 0; j < length; j++)
        {
            var column = new object?[items.Count];
            for (var i = 0; i < items.Count; i++) column[i] = at(items[i]!, j);
            result.Add(CollateMember(column, $"{path}[{j}]"));
        }
        return result;
    }

    private static void CheckShapes(Tensor[] tensors, string path)
    {
        var shape = tensors[0].shape;
        for (var i = 1; i < tensors.Length; i++)
            if (!tensors[i].shape.SequenceEqual(shape))
                throw Fault(path, i, $"has shape [{string.Join(", ", tensors[i].shape)}], but row 0 has [{string.Join(", ", shape)}]; " +
                    "pad or resize in RowPrep, or override CollateFn");
    }

    private static string Describe(object? value) => value is null
        ? "is null"
        : $"is a {value.GetType().Name}, not a tensor: the default collate stacks tensors only " +
          "(wrap it with torch.tensor(...) in RowPrep, or override CollateFn)";

    private static string Kind(object? value) => value?.GetType().Name ?? "null";

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static SpecException Fault(string path, int row, string problem) =>
        new("RowPrep", $"{(path.Length == 0 ? "the returned value" : $"member '{path}'")} of row {row} of the minibatch {problem}");
}
