using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace RapidFire.Spec.Metrics;

/// <summary>
/// Collects what <c>ComputeMetrics</c> returns, one row per minibatch, into the table
/// <c>AggregateMetrics</c> receives.
/// </summary>
/// <remarks>
/// A tensor metric (one value: shape (1,) or a scalar) becomes a double column; such metrics must be additive,
/// and the parts of one minibatch computed on several devices are summed. Any other value becomes an object
/// column holding, per minibatch, the list of the values its parts returned.
/// </remarks>
public sealed class MinibatchMetrics
{
    private readonly List<string> order = [];
    private readonly Dictionary<string, List<double?>> numeric = [];
    private readonly Dictionary<string, List<List<object>?>> objects = [];

    /// <summary>The number of minibatches added.</summary>
    public int Count { get; private set; }

    /// <summary>Adds the metrics of one minibatch computed in one piece.</summary>
    public void Add(IReadOnlyDictionary<string, object>? metrics) => AddParts(metrics is null ? [] : [metrics]);

    /// <summary>
    /// Adds the metrics of one minibatch computed as several parts (one per device shard): tensor values are
    /// summed, other values appended into one list. A key that is a tensor in one minibatch and not in another,
    /// a null value or a multi-element tensor is a <see cref="SpecException"/> of <c>ComputeMetrics</c>.
    /// </summary>
    public void AddParts(IReadOnlyList<IReadOnlyDictionary<string, object>> parts)
    {
        var row = Count;
        foreach (var part in parts)
            foreach (var (key, value) in part)
            {
                switch (value)
                {
                    case null:
                        throw new SpecException("ComputeMetrics", $"metric '{key}' is null");
                    case Tensor tensor:
                        var list = Column(numeric, key, "a tensor", objects);
                        list[row] = (list[row] ?? 0) + ScalarOf(tensor, key);
                        break;
                    default:
                        var cells = Column(objects, key, "not a tensor", numeric);
                        (cells[row] ??= []).Add(value);
                        break;
                }
            }
        Count++;
        foreach (var list in numeric.Values) Pad(list);
        foreach (var list in objects.Values) Pad(list);
    }

    /// <summary>The table: one column per metric key, in first-seen order; one row per minibatch.</summary>
    public DataFrame ToDataFrame() => new(order.Select(key => numeric.TryGetValue(key, out var values)
        ? (DataFrameColumn)new DoubleDataFrameColumn(key, values)
        : new ObjectDataFrameColumn(key, objects[key])));

    /// <summary>Each tensor metric summed over all minibatches: the default aggregation.</summary>
    public IReadOnlyDictionary<string, double> Sums() =>
        order.Where(numeric.ContainsKey).ToDictionary(key => key, key => numeric[key].Sum(v => v ?? 0));

    private List<T?> Column<T, TOther>(Dictionary<string, List<T?>> columns, string key, string kind,
        Dictionary<string, List<TOther>> others)
    {
        if (others.ContainsKey(key))
            throw new SpecException("ComputeMetrics", $"metric '{key}' is {kind} in minibatch {Count} but not in an earlier one");
        if (!columns.TryGetValue(key, out var list))
        {
            columns[key] = list = [];
            order.Add(key);
        }
        Pad(list, Count + 1);
        return list;
    }

    private void Pad<T>(List<T?> list) => Pad(list, Count);

    private static void Pad<T>(List<T?> list, int length)
    {
        while (list.Count < length) list.Add(default);
    }

    internal static double ScalarOf(Tensor tensor, string key) => tensor.numel() == 1
        ? tensor.to_type(ScalarType.Float64).item<double>()
        : throw new SpecException("ComputeMetrics",
            $"metric '{key}' is a tensor of shape [{string.Join(", ", tensor.shape)}]; a tensor metric must hold one value");
}

/// <summary>Builders of the epoch-level metric tables.</summary>
public static class MetricTables
{
    /// <summary>
    /// A table with one row per entry of <paramref name="rows"/> (one per epoch for <c>HasConverged</c>) and one
    /// double column per key, in first-seen order; a key missing from a row is null there.
    /// </summary>
    public static DataFrame FromRows(IEnumerable<IReadOnlyDictionary<string, double>> rows)
    {
        var list = rows.ToList();
        var keys = list.SelectMany(r => r.Keys).Distinct().ToList();
        return new DataFrame(keys.Select(key =>
            (DataFrameColumn)new DoubleDataFrameColumn(key, list.Select(r => r.TryGetValue(key, out var v) ? v : (double?)null))));
    }
}
