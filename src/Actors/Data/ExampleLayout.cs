using System.Collections;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Data;

/// <summary>
/// The shape of one <c>RowPrep</c> value that the default collate can stack: tensors inside dictionaries, tuples and
/// lists. It stores the examples of a partition as one <c>[rows, ...shape]</c> tensor per member and builds a
/// minibatch from them in the structure <see cref="Spec.Collate.Default"/> returns.
/// </summary>
internal sealed class ExampleLayout
{
    private abstract record Node;

    private sealed record Leaf(int Index) : Node;

    private sealed record Map(string[] Keys, Node[] Children) : Node;

    private sealed record Sequence(bool Tuple, Node[] Children) : Node;

    private readonly Node root;
    private readonly List<(long[] Shape, ScalarType Type, Device Device, long ElementSize)> leaves;

    private ExampleLayout(Node root, List<(long[] Shape, ScalarType Type, Device Device, long ElementSize)> leaves)
    {
        this.root = root;
        this.leaves = leaves;
        RowBytes = leaves.Sum(l => l.Shape.Aggregate(1L, (a, b) => a * b) * l.ElementSize);
    }

    /// <summary>The bytes one example takes.</summary>
    public long RowBytes { get; }

    /// <summary>The layout of <paramref name="example"/>, or null when the default collate could not stack it.</summary>
    public static ExampleLayout? Of(object example)
    {
        var leaves = new List<(long[], ScalarType, Device, long)>();
        var root = Describe(example, leaves);
        return root is null || leaves.Count == 0 ? null : new ExampleLayout(root, leaves);
    }

    private static Node? Describe(object? value, List<(long[], ScalarType, Device, long)> leaves)
    {
        switch (value)
        {
            case Tensor t:
                leaves.Add((t.shape, t.dtype, t.device, t.ElementSize));
                return new Leaf(leaves.Count - 1);
            case IDictionary map:
                var keys = new string[map.Count];
                var children = new Node[map.Count];
                var k = 0;
                foreach (var key in map.Keys)
                {
                    if (key is not string name || Describe(map[key], leaves) is not { } child) return null;
                    keys[k] = name;
                    children[k++] = child;
                }
                return new Map(keys, children);
            case ITuple tuple:
                return Items(Enumerable.Range(0, tuple.Length).Select(i => tuple[i]), tuple: true, leaves);
            case IList list:
                return Items(list.Cast<object?>(), tuple: false, leaves);
            default:
                return null;
        }
    }

    private static Node? Items(IEnumerable<object?> items, bool tuple, List<(long[], ScalarType, Device, long)> leaves)
    {
        var children = new List<Node>();
        foreach (var item in items)
        {
            if (Describe(item, leaves) is not { } child) return null;
            children.Add(child);
        }
        return new Sequence(tuple, children.ToArray());
    }

    /// <summary>Empty storage for <paramref name="rows"/> examples: one tensor per member.</summary>
    public Tensor[] Allocate(int rows) =>
        leaves.Select(l => torch.empty([rows, .. l.Shape], l.Type, l.Device)).ToArray();

    /// <summary>
    /// Copies <paramref name="examples"/> into rows <paramref name="rows"/>: one <c>index_copy_</c> per member, not a copy
    /// per row. False, with why, when an example's structure or a member's shape or type differs (nothing is written then).
    /// </summary>
    public bool Write(IReadOnlyList<object> examples, IReadOnlyList<int> rows, Tensor[] columns, out string? problem)
    {
        var members = new Tensor[leaves.Count][];
        for (var m = 0; m < members.Length; m++) members[m] = new Tensor[examples.Count];
        var tensors = new Tensor[leaves.Count];
        for (var i = 0; i < examples.Count; i++)
        {
            problem = Match(root, examples[i], tensors, "");
            if (problem is not null) return false;
            for (var m = 0; m < tensors.Length; m++) members[m][i] = tensors[m];
        }
        problem = null;
        using var _ = torch.no_grad();
        using var index = torch.tensor(rows.Select(r => (long)r).ToArray());
        for (var m = 0; m < members.Length; m++)
        {
            using var stacked = torch.stack(members[m]);
            columns[m].index_copy_(0, index, stacked);
        }
        return true;
    }

    private string? Match(Node node, object? value, Tensor[] tensors, string path)
    {
        switch (node, value)
        {
            case (Leaf leaf, Tensor t):
                var (shape, type, _, _) = leaves[leaf.Index];
                if (t.dtype != type || !t.shape.SequenceEqual(shape))
                    return $"member '{Name(path)}' is {t.dtype} [{string.Join(", ", t.shape)}] in some rows and {type} [{string.Join(", ", shape)}] in others";
                tensors[leaf.Index] = t;
                return null;
            case (Map map, IDictionary d) when d.Count == map.Keys.Length:
                for (var i = 0; i < map.Keys.Length; i++)
                {
                    if (!d.Contains(map.Keys[i])) return $"member '{Name(path)}' has other keys in some rows";
                    if (Match(map.Children[i], d[map.Keys[i]], tensors, Join(path, map.Keys[i])) is { } problem) return problem;
                }
                return null;
            case (Sequence { Tuple: true } seq, ITuple t) when t.Length == seq.Children.Length:
                for (var i = 0; i < seq.Children.Length; i++)
                    if (Match(seq.Children[i], t[i], tensors, $"{path}[{i}]") is { } problem) return problem;
                return null;
            case (Sequence { Tuple: false } seq, IList l) when l is not ITuple && l.Count == seq.Children.Length:
                for (var i = 0; i < seq.Children.Length; i++)
                    if (Match(seq.Children[i], l[i], tensors, $"{path}[{i}]") is { } problem) return problem;
                return null;
            default:
                return $"member '{Name(path)}' has another structure in some rows";
        }
    }

    /// <summary>A minibatch from the gathered rows of each member, structured as the default collate returns it.</summary>
    public object Build(Tensor[] gathered) => Build(root, gathered);

    private static object Build(Node node, Tensor[] gathered) => node switch
    {
        Leaf leaf => gathered[leaf.Index],
        Map map => map.Keys.Select((k, i) => (k, i)).ToDictionary(p => p.k, p => Build(map.Children[p.i], gathered)),
        Sequence { Tuple: true } seq => seq.Children.Select(c => Build(c, gathered)).ToArray(),
        Sequence seq => seq.Children.Select(c => Build(c, gathered)).ToList(),
        _ => throw new InvalidOperationException(node.ToString()),
    };

    private static string Name(string path) => path.Length == 0 ? "the returned value" : path;

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
