using RapidFire.Spec;

namespace RapidFire.Actors.Scheduling;

/// <summary>
/// How a run is spread over several devices (data parallelism): how many it asks for (its <c>num_devices</c> knob) and
/// how a minibatch is cut into one shard per device. Pure functions.
/// </summary>
/// <remarks>
/// A run on k devices trains every minibatch as k shards, one per device: each device runs <c>ComputeForward</c> and
/// backward on its shard, the gradients are averaged weighted by shard size (<see cref="Weights"/>), and every replica
/// takes the same optimizer step. With a loss that is a mean over the minibatch, that is the gradient of the whole
/// minibatch, so the run follows the same path as on one device, up to the order of floating-point sums.
/// </remarks>
public static class DataParallel
{
    /// <summary>The knob: <c>"auto"</c> (the default) or a whole number of devices &gt;= 1.</summary>
    public const string Knob = "num_devices";

    /// <summary>
    /// The number of devices <paramref name="cfg"/> asks for: null for <c>auto</c> (one device, more when devices would
    /// otherwise idle); a fixed count otherwise. A bad value is a <see cref="ConfigException"/> naming the knob.
    /// </summary>
    public static int? Requested(Config cfg)
    {
        ArgumentNullException.ThrowIfNull(cfg);
        if (!cfg.TryGetValue(Knob, out var value) || value is null || value is "auto") return null;
        return value switch
        {
            long n and >= 1 and <= 4096 => (int)n,
            int n and >= 1 and <= 4096 => n,
            _ => throw new ConfigException(Knob, $"must be \"auto\" or a whole number of devices >= 1, got {ConfigValue.ToJson(value)}"),
        };
    }

    /// <summary>
    /// Checks <paramref name="cfg"/>'s <c>num_devices</c> against the fit's <paramref name="devices"/>; the problem, naming
    /// the run (<paramref name="who"/>: <c>run 3</c>, <c>config 2</c>) and the knob, or null when it fits.
    /// </summary>
    public static string? Problem(string who, Config cfg, int devices)
    {
        try
        {
            return Requested(cfg) is { } wanted && wanted > devices
                ? $"{who}: {Knob} = {wanted}, but the fit has {devices} device{(devices == 1 ? "" : "s")} (--devices)"
                : null;
        }
        catch (ConfigException e)
        {
            return $"{who}: {e.Message}";
        }
    }

    /// <summary>
    /// Cuts a minibatch's rows into at most <paramref name="shards"/> contiguous non-empty shards whose sizes differ by
    /// at most one, the larger first: 10 rows over 4 devices are 3, 3, 2, 2; 2 rows over 4 devices are 1, 1.
    /// </summary>
    public static IReadOnlyList<int[]> Split(int[] rows, int shards)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentOutOfRangeException.ThrowIfLessThan(shards, 1);
        var count = Math.Min(shards, rows.Length);
        var result = new List<int[]>(count);
        for (int s = 0, start = 0; s < count; s++)
        {
            var size = rows.Length / count + (s < rows.Length % count ? 1 : 0);
            result.Add(rows[start..(start + size)]);
            start += size;
        }
        return result;
    }

    /// <summary>
    /// The weight of each shard's gradient in the average: its share of the minibatch's examples, n_s / Σn. The
    /// averaged gradient is Σ weight_s · gradient_s, the gradient of the whole minibatch's mean loss.
    /// </summary>
    public static double[] Weights(IReadOnlyList<long> shardSizes)
    {
        ArgumentNullException.ThrowIfNull(shardSizes);
        var total = shardSizes.Sum();
        if (total <= 0 || shardSizes.Any(n => n < 0))
            throw new ArgumentException($"shard sizes must be >= 0 with a positive sum, got [{string.Join(", ", shardSizes)}]", nameof(shardSizes));
        return shardSizes.Select(n => (double)n / total).ToArray();
    }
}
