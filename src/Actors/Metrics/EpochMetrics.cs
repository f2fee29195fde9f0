using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;

namespace RapidFire.Actors.Metrics;

/// <summary>
/// The epoch-level metrics of one (run, partition, epoch), from its minibatch records: the loss (mean over
/// examples), each named metric (hits over examples) and what <c>AggregateMetrics</c> makes of the
/// <c>ComputeMetrics</c> table (one row per minibatch, in step order).
/// </summary>
public static class EpochMetrics
{
    /// <summary>
    /// The epoch metrics: <c>loss</c>, the named metrics, then <c>AggregateMetrics</c>' keys (which win a clash).
    /// A failing <c>AggregateMetrics</c> is a <see cref="RunFailureException"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, double> Close(IEnumerable<MinibatchRecord> records, MLSpec spec, Config cfg, Mode mode)
    {
        var minibatches = records.OrderBy(m => m.Step).ToList();
        var metrics = new Dictionary<string, double>();
        var withLoss = minibatches.Where(m => m.Loss is not null).ToList();
        var examples = withLoss.Sum(m => (double)m.Examples);
        if (examples > 0) metrics["loss"] = withLoss.Sum(m => m.Loss!.Value * m.Examples) / examples;

        foreach (var name in minibatches.SelectMany(m => m.Named.Keys).Distinct())
        {
            var counts = minibatches.Select(m => m.Named.GetValueOrDefault(name)).OfType<NamedCount>().ToList();
            var total = counts.Sum(c => c.Count);
            metrics[name] = total == 0 ? 0 : (double)counts.Sum(c => c.Correct) / total;
        }

        if (minibatches.Any(m => m.Values.Numbers.Count > 0 || m.Values.Objects.Count > 0))
        {
            var table = new MinibatchMetrics();
            foreach (var minibatch in minibatches) table.Add(minibatch.Values);
            var aggregated = SpecCall.Run("AggregateMetrics", () => spec.AggregateMetrics(table.ToDataFrame(), cfg, mode)
                ?? throw new SpecException("AggregateMetrics", "returned null"));
            foreach (var (key, value) in aggregated) metrics[key] = value;
        }
        return metrics;
    }

    /// <summary>
    /// The keys of non-tensor <c>ComputeMetrics</c> values (strings, lists, objects) that the default
    /// <c>AggregateMetrics</c>, which sums tensor metrics only, drops: none when the spec aggregates them itself.
    /// </summary>
    public static IReadOnlyList<string> DroppedByDefault(IEnumerable<MinibatchRecord> records, MLSpec spec) =>
        spec.GetType().GetMethod(nameof(MLSpec.AggregateMetrics))!.DeclaringType != typeof(MLSpec)
            ? []
            : records.SelectMany(m => m.Values.Objects.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
}
