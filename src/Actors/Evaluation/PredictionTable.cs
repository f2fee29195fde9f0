using System.Collections;
using System.Globalization;
using RapidFire.Spec;
using static TorchSharp.torch;

namespace RapidFire.Actors.Evaluation;

/// <summary>The type of a prediction column.</summary>
public enum PredictionType
{
    /// <summary>64-bit integers: integer and boolean tensors (booleans as 0 and 1), integer list items.</summary>
    Int64,
    /// <summary>Doubles: floating-point tensors and list items.</summary>
    Double,
    /// <summary>Strings: list items that are strings.</summary>
    String,
}

/// <summary>
/// One output key of <c>ComputeForward</c> in predict mode, as columns: a scalar per row is one column named after the
/// key; anything larger per row is flattened in row-major order into one column per element, <c>key_0</c>,
/// <c>key_1</c>, ... (a <c>[batch, 10]</c> logits tensor gives <c>logits_0</c> to <c>logits_9</c>).
/// </summary>
public sealed class PredictionColumn
{
    private List<long>? longs = [];
    private List<double>? doubles;
    private List<string?>? strings;

    internal PredictionColumn(string key, PredictionType type, bool scalar, int width)
    {
        Key = key;
        Type = type;
        Scalar = scalar;
        Width = width;
        if (type == PredictionType.Double) (longs, doubles) = (null, []);
        else if (type == PredictionType.String) (longs, strings) = (null, []);
    }

    /// <summary>The output's key.</summary>
    public string Key { get; }

    /// <summary>The type of its values.</summary>
    public PredictionType Type { get; private set; }

    /// <summary>Whether each row holds one value (a <c>[batch]</c> tensor, a list of values), written as one column named <see cref="Key"/>.</summary>
    public bool Scalar { get; }

    /// <summary>Values per row.</summary>
    public int Width { get; }

    /// <summary>The names of its columns: the key for a scalar, else <c>key_0</c> ... <c>key_{Width-1}</c>.</summary>
    public IReadOnlyList<string> Names => Scalar
        ? [Key]
        : Enumerable.Range(0, Width).Select(i => string.Create(CultureInfo.InvariantCulture, $"{Key}_{i}")).ToList();

    /// <summary>Element <paramref name="element"/> of row <paramref name="row"/>: a <see cref="long"/>, <see cref="double"/> or <see cref="string"/>.</summary>
    public object? Value(int row, int element)
    {
        var at = row * Width + element;
        return Type switch
        {
            PredictionType.Int64 => longs![at],
            PredictionType.Double => doubles![at],
            _ => strings![at],
        };
    }

    /// <summary>Every value, row-major, as <see cref="long"/>s (for an <see cref="PredictionType.Int64"/> column).</summary>
    public IReadOnlyList<long> Longs => longs ?? throw new InvalidOperationException($"column {Key} holds {Type} values");

    /// <summary>Every value, row-major, as <see cref="double"/>s (for a <see cref="PredictionType.Double"/> column).</summary>
    public IReadOnlyList<double> Doubles => doubles ?? throw new InvalidOperationException($"column {Key} holds {Type} values");

    /// <summary>Every value, row-major, as strings (for a <see cref="PredictionType.String"/> column).</summary>
    public IReadOnlyList<string?> Strings => strings ?? throw new InvalidOperationException($"column {Key} holds {Type} values");

    internal void Append(Values values)
    {
        if (values.Type == PredictionType.String != (Type == PredictionType.String))
            throw new SpecException("ComputeForward",
                $"predict output '{Key}' holds {Describe(values.Type)} in this minibatch but {Describe(Type)} in earlier ones");
        if (Type == PredictionType.Int64 && values.Type == PredictionType.Double)
        {
            // An integer column that turns out to hold fractions becomes a double column.
            doubles = longs!.Select(v => (double)v).ToList();
            longs = null;
            Type = PredictionType.Double;
        }
        switch (Type)
        {
            case PredictionType.Int64: longs!.AddRange(values.Longs!); break;
            case PredictionType.Double: doubles!.AddRange(values.Doubles ?? values.Longs!.Select(v => (double)v)); break;
            default: strings!.AddRange(values.Strings!); break;
        }
    }

    private static string Describe(PredictionType type) => type == PredictionType.String ? "strings" : "numbers";

    /// <summary>One minibatch's values of an output, row-major: exactly one of the lists is set.</summary>
    internal sealed record Values(PredictionType Type, bool Scalar, int Width, long[]? Longs, double[]? Doubles, string?[]? Strings);
}

/// <summary>
/// The predictions of one run over the predict partition: one row per predict id, in partition order, with the
/// <c>ComputeForward</c> outputs as typed columns (see <see cref="PredictionColumn"/> for the naming). Every
/// minibatch must give the same output keys with the same number of values per row.
/// </summary>
public sealed class PredictionTable
{
    /// <summary>The name of the id column, first in every predictions file.</summary>
    public const string IdColumn = "id";

    private readonly List<long> ids = [];
    private readonly List<PredictionColumn> columns = [];

    /// <summary>The predict ids, one per row, in partition order.</summary>
    public IReadOnlyList<long> Ids => ids;

    /// <summary>The outputs, in the order the first minibatch gave them.</summary>
    public IReadOnlyList<PredictionColumn> Columns => columns;

    /// <summary>The number of rows.</summary>
    public int RowCount => ids.Count;

    /// <summary>The column names of a predictions file: <c>id</c>, then each output's columns.</summary>
    public IReadOnlyList<string> ColumnNames => [IdColumn, .. columns.SelectMany(c => c.Names)];

    /// <summary>
    /// Adds one minibatch: the ids of its rows and the outputs <c>ComputeForward</c> returned in predict mode, which are
    /// read (and copied to the host) here. An output that breaks the rules is a <see cref="SpecException"/> of
    /// <c>ComputeForward</c> naming its key.
    /// </summary>
    public void Add(IReadOnlyList<long> rowIds, IReadOnlyDictionary<string, object> outputs)
    {
        ArgumentNullException.ThrowIfNull(rowIds);
        ArgumentNullException.ThrowIfNull(outputs);
        var rows = rowIds.Count;
        var values = outputs.Select(kv => (kv.Key, Values: ValuesOf(kv.Key, kv.Value, rows))).ToList();
        if (columns.Count == 0 && ids.Count == 0)
        {
            if (values.Count == 0) throw new SpecException("ComputeForward", "returned no outputs in predict mode: there is nothing to write");
            foreach (var (key, v) in values) columns.Add(new PredictionColumn(key, v.Type, v.Scalar, v.Width));
            CheckNames();
        }
        else
        {
            var expected = columns.Select(c => c.Key).ToList();
            var got = values.Select(v => v.Key).ToList();
            if (!expected.Order(StringComparer.Ordinal).SequenceEqual(got.Order(StringComparer.Ordinal)))
                throw new SpecException("ComputeForward",
                    $"predict outputs must have the same keys in every minibatch: the first had {string.Join(", ", expected)}, this one has {string.Join(", ", got)}");
        }
        foreach (var (key, v) in values)
        {
            var column = columns.Single(c => c.Key == key);
            if (v.Width != column.Width || v.Scalar != column.Scalar)
                throw new SpecException("ComputeForward",
                    $"predict output '{key}' has {Shape(v.Scalar, v.Width)} per row in this minibatch but {Shape(column.Scalar, column.Width)} in earlier ones; " +
                    "every row needs the same shape (pad it in ComputeForward)");
        }
        foreach (var (key, v) in values) columns.Single(c => c.Key == key).Append(v);
        ids.AddRange(rowIds);
    }

    private static string Shape(bool scalar, int width) => scalar ? "one value" : $"{width} values";

    private void CheckNames()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal) { IdColumn };
        foreach (var column in columns)
            foreach (var name in column.Names)
                if (!seen.Add(name))
                    throw new SpecException("ComputeForward", name == IdColumn
                        ? $"predict output '{column.Key}' would be written as column '{IdColumn}', which holds the predict ids; rename the output"
                        : $"predict output '{column.Key}' gives column '{name}', which another output gives too; rename one of them");
    }

    /// <summary>An output's values for <paramref name="rows"/> rows: a tensor batch-long in its first dimension, or a list of one value per row.</summary>
    private static PredictionColumn.Values ValuesOf(string key, object? value, int rows) => value switch
    {
        Tensor tensor => OfTensor(key, tensor, rows),
        string or null => throw Bad(key, $"is {(value is null ? "null" : "a string")}; predict outputs are tensors or lists with one value per row"),
        IList list => OfList(key, list, rows),
        _ => throw Bad(key, $"is a {value.GetType().Name}; predict outputs are tensors or lists with one value per row"),
    };

    private static PredictionColumn.Values OfTensor(string key, Tensor tensor, int rows)
    {
        if (tensor.dim() == 0 || tensor.shape[0] != rows)
            throw Bad(key, $"has shape [{string.Join(", ", tensor.shape)}], but predict outputs must be {rows} (the minibatch's rows) long in their first dimension");
        var width = checked((int)(tensor.numel() / rows));
        var scalar = tensor.dim() == 1;
        if (width == 0) throw Bad(key, $"has shape [{string.Join(", ", tensor.shape)}]: no value per row");
        var host = tensor.detach().cpu().contiguous();
        if (host.is_floating_point())
        {
            using var asDouble = host.to_type(ScalarType.Float64);
            return new(PredictionType.Double, scalar, width, null, asDouble.data<double>().ToArray(), null);
        }
        if (host.is_complex()) throw Bad(key, $"is a complex tensor ({host.dtype}); predict outputs are real numbers");
        using var asLong = host.to_type(ScalarType.Int64);
        return new(PredictionType.Int64, scalar, width, asLong.data<long>().ToArray(), null, null);
    }

    private static PredictionColumn.Values OfList(string key, IList list, int rows)
    {
        if (list.Count != rows)
            throw Bad(key, $"is a list of {list.Count} items, but predict outputs must hold one per row ({rows})");
        var items = list.Cast<object?>().Select(item => item is Tensor { } t && t.numel() == 1 ? Scalar(t) : item).ToList();
        if (items.All(item => item is string or null))
            return new(PredictionType.String, true, 1, null, null, items.Cast<string?>().ToArray());
        if (items.All(IsInteger))
            return new(PredictionType.Int64, true, 1, items.Select(item => item is bool b ? (b ? 1L : 0L) : Convert.ToInt64(item, CultureInfo.InvariantCulture)).ToArray(), null, null);
        if (items.All(item => IsInteger(item) || item is double or float or decimal or Half))
            return new(PredictionType.Double, true, 1, null,
                items.Select(item => item switch
                {
                    bool b => b ? 1.0 : 0.0,
                    Half h => (double)h,
                    _ => Convert.ToDouble(item, CultureInfo.InvariantCulture),
                }).ToArray(), null);
        var odd = items.First(item => !(item is string or null || IsInteger(item) || item is double or float or decimal or Half));
        throw Bad(key, $"is a list holding a {odd?.GetType().Name ?? "null"}; a list output holds one number or string per row");
    }

    private static bool IsInteger(object? item) => item is long or int or short or byte or sbyte or uint or ushort or bool;

    private static object Scalar(Tensor t)
    {
        using var host = t.detach().cpu();
        return host.is_floating_point() ? host.to_type(ScalarType.Float64).item<double>() : host.to_type(ScalarType.Int64).item<long>();
    }

    private static SpecException Bad(string key, string problem) => new("ComputeForward", $"predict output '{key}' {problem}");
}
