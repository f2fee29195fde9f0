using RapidFire.Spec;
using RapidFire.Spec.Metrics;

namespace RapidFire.Actors.Metrics;

/// <summary>A named metric's counts on one minibatch: examples whose target was among the top K, and examples.</summary>
public sealed record NamedCount(long Correct, long Count);

/// <summary>
/// The metrics of one minibatch: the loss (absent in predict), the named metrics' counts and the
/// <c>ComputeMetrics</c> values. A device publishes each as it goes (for live observers) and hands a task's records
/// to the run, which journals them with the chunk: they are the source of the epoch metrics and the metric files.
/// </summary>
/// <param name="RunId">The run.</param>
/// <param name="Mode">Train or validation (or test).</param>
/// <param name="Epoch">The 0-based epoch.</param>
/// <param name="Chunk">The 0-based chunk (0 in validation).</param>
/// <param name="Step">The minibatch's 0-based index in its epoch's pass over the partition.</param>
/// <param name="Examples">Rows in the minibatch.</param>
/// <param name="Loss">The minibatch's loss.</param>
/// <param name="Named">The named metrics' counts.</param>
/// <param name="Values">The <c>ComputeMetrics</c> values.</param>
public sealed record MinibatchRecord(int RunId, Mode Mode, int Epoch, int Chunk, int Step, int Examples, double? Loss,
    IReadOnlyDictionary<string, NamedCount> Named, MetricValues Values)
{
    /// <summary>The minibatch's numbers for display: loss, each named metric's ratio, each tensor metric.</summary>
    public IReadOnlyDictionary<string, double> Numbers()
    {
        var numbers = new Dictionary<string, double>();
        if (Loss is { } loss) numbers["loss"] = loss;
        foreach (var (name, count) in Named) numbers[name] = count.Count == 0 ? 0 : (double)count.Correct / count.Count;
        foreach (var (key, value) in Values.Numbers) numbers.TryAdd(key, value);
        return numbers;
    }
}
