using Microsoft.Data.Analysis;
using static TorchSharp.torch;

namespace RapidFire.Spec.Metrics;

/// <summary>
/// The <c>ComputeMetrics</c> values of one minibatch, with the tensors already read: each tensor metric as a number,
/// each other value as the list of what the minibatch's parts returned. Tensor-free, so it can travel in messages.
/// </summary>
/// <param name="Numbers">Tensor metrics (one value each), summed over the minibatch's parts.</param>
/// <param name="Objects">Non-tensor metrics, one list per key holding each part's value.</param>
public sealed record MetricValues(IReadOnlyDictionary<string, double> Numbers, IReadOnlyDictionary<string, IReadOnlyList<object>> Objects)
{
    /// <summary>No metrics.</summary>
    public static MetricValues Empty { get; } = new(new Dictionary<string, double>(), new Dictionary<string, IReadOnlyList<object>>());

    /// <summary>
    /// Reads the metrics of one minibatch computed as one or several parts (one per device shard): tensor values
    /// (shape (1,) or scalar) are summed, other values appended into one list. A null value or a multi-element tensor
    /// is a <see cref="SpecException"/> of <c>ComputeMetrics</c> naming the key.
    /// </summary>
    public static MetricValues FromParts(IEnumerable<IReadOnlyDictionary<string, object>?> parts) =>
        Merge(parts.Select(part =>
        {
            if (part is null) return Empty;
            var numbers = new Dictionary<string, double>();
            var objects = new Dictionary<string, IReadOnlyList<object>>();
            foreach (var (key, value) in part)
            {
                if (value is null) throw new SpecException("ComputeMetrics", $"metric '{key}' is null");
                if (value is Tensor tensor) numbers[key] = ScalarOf(tensor, key);
                else objects[key] = [value];
            }
            return new MetricValues(numbers, objects);
        }).ToList());

    /// <summary>
    /// The metrics of one minibatch from those of its parts (one per device shard), in part order: numbers are summed,
    /// lists appended. A key that is a tensor metric in one part and not in another is a <see cref="SpecException"/>
    /// of <c>ComputeMetrics</c>.
    /// </summary>
    public static MetricValues Merge(IEnumerable<MetricValues> parts)
    {
        var numbers = new Dictionary<string, double>();
        var objects = new Dictionary<string, IReadOnlyList<object>>();
        foreach (var part in parts)
        {
            foreach (var (key, value) in part.Numbers)
            {
                if (objects.ContainsKey(key)) throw Mixed(key);
                numbers[key] = numbers.GetValueOrDefault(key) + value;
            }
            foreach (var (key, values) in part.Objects)
            {
                if (numbers.ContainsKey(key)) throw Mixed(key);
                objects[key] = [.. objects.GetValueOrDefault(key) ?? [], .. values];
            }
        }
        return numbers.Count == 0 && objects.Count == 0 ? Empty : new MetricValues(numbers, objects);
    }

    private static SpecException Mixed(string key) =>
        new("ComputeMetrics", $"metric '{key}' is a tensor in one part of the minibatch but not in another");

    private static double ScalarOf(Tensor tensor, string key) => tensor.numel() == 1
        ? tensor.to_type(ScalarType.Float64).item<double>()
        : throw new SpecException("ComputeMetrics",
            $"metric '{key}' is a tensor of shape [{string.Join(", ", tensor.shape)}]; a tensor metric must hold one value");
}

/// <summary>
/// Collects what <c>ComputeMetrics</c> returns, one row per minibatch, into the table <c>AggregateMetrics</c>
/// receives: a double column per tensor metric (such metrics must be additive), an object column per other metric
/// holding, per minibatch, the list of the values its parts returned.
/// </summary>
public sealed class MinibatchMetrics
{
    private readonly List<string> order = [];
    private readonly Dictionary<string, List<double?>> numeric = [];
    private readonly Dictionary<string, List<IReadOnlyList<object>?>> objects = [];

    /// <summary>The number of minibatches added.</summary>
    public int Count { get; private set; }

    /// <summary>Adds the metrics of one minibatch computed in one piece.</summary>
    public void Add(IReadOnlyDictionary<string, object>? metrics) => Add(MetricValues.FromParts([metrics]));

    /// <summary>Adds the metrics of one minibatch computed as several parts (one per device shard).</summary>
    public void AddParts(IReadOnlyList<IReadOnlyDictionary<string, object>> parts) => Add(MetricValues.FromParts(parts));

    /// <summary>
    /// Adds the metrics of one minibatch. A key that is a tensor metric in one minibatch and not in another is a
    /// <see cref="SpecException"/> of <c>ComputeMetrics</c>.
    /// </summary>
    public void Add(MetricValues values)
    {
        foreach (var (key, value) in values.Numbers) Column(numeric, key, "a tensor", objects)[Count] = value;
        foreach (var (key, value) in values.Objects) Column(objects, key, "not a tensor", numeric)[Count] = value;
        Count++;
        foreach (var list in numeric.Values) Pad(list, Count);
        foreach (var list in objects.Values) Pad(list, Count);
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

    private static void Pad<T>(List<T?> list, int length)
    {
        while (list.Count < length) list.Add(default);
    }
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
