using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using static RapidFire.Actors.Metrics.MetricsProtocol;

namespace RapidFire.Actors.Metrics;

/// <summary>
/// Builds the epoch-level metrics of one (run, partition, epoch) from its minibatches: the loss (mean over
/// examples), each named metric (hits over examples) and what <c>AggregateMetrics</c> makes of the
/// <c>ComputeMetrics</c> table (one row per minibatch, in step order).
/// </summary>
public sealed class EpochAccumulator
{
    private readonly SortedDictionary<int, MinibatchRecorded> minibatches = [];

    /// <summary>Adds a minibatch (in any order: they are sorted by step).</summary>
    public void Add(MinibatchRecorded minibatch) => minibatches[minibatch.Step] = minibatch;

    /// <summary>How many minibatches were added.</summary>
    public int Count => minibatches.Count;

    /// <summary>
    /// The epoch metrics: <c>loss</c>, the named metrics, then <c>AggregateMetrics</c>' keys (which win a clash).
    /// A failing <c>AggregateMetrics</c> is a <see cref="RunFailureException"/>.
    /// </summary>
    public IReadOnlyDictionary<string, double> Close(MLSpec spec, Config cfg, Mode mode)
    {
        var metrics = new Dictionary<string, double>();
        var withLoss = minibatches.Values.Where(m => m.Loss is not null).ToList();
        var examples = withLoss.Sum(m => (double)m.Examples);
        if (examples > 0) metrics["loss"] = withLoss.Sum(m => m.Loss!.Value * m.Examples) / examples;

        foreach (var name in minibatches.Values.SelectMany(m => m.Named.Keys).Distinct())
        {
            var counts = minibatches.Values.Select(m => m.Named.GetValueOrDefault(name)).Where(c => c is not null).ToList();
            var total = counts.Sum(c => c!.Count);
            metrics[name] = total == 0 ? 0 : (double)counts.Sum(c => c!.Correct) / total;
        }

        var table = new MinibatchMetrics();
        foreach (var minibatch in minibatches.Values) table.Add(minibatch.Values);
        if (minibatches.Values.Any(m => m.Values != MetricValues.Empty))
        {
            var aggregated = SpecCall.Run("AggregateMetrics", () => spec.AggregateMetrics(table.ToDataFrame(), cfg, mode)
                ?? throw new SpecException("AggregateMetrics", "returned null"));
            foreach (var (key, value) in aggregated) metrics[key] = value;
        }
        return metrics;
    }
}
