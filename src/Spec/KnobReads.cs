using System.Collections.Concurrent;

namespace RapidFire.Spec;

/// <summary>
/// The top-level knobs that code given a <see cref="Config.Tracked"/> view has read, or "all of them". Safe to record
/// into from several threads. <see cref="Version"/> grows with every knob first seen, so that what was keyed by the
/// knobs read so far can tell it is out of date.
/// </summary>
public sealed class KnobReads
{
    private readonly ConcurrentDictionary<string, byte> keys = new(StringComparer.Ordinal);
    private int version;
    private volatile bool all;

    /// <summary>Whether the whole config was seen (enumerated, printed, compared): every knob counts as read.</summary>
    public bool All => all;

    /// <summary>The knobs read by name, in no order.</summary>
    public IReadOnlyCollection<string> Keys => (IReadOnlyCollection<string>)keys.Keys;

    /// <summary>Grows by one whenever a knob is read for the first time, or the whole config is.</summary>
    public int Version => Volatile.Read(ref version);

    /// <summary>Records a read of <paramref name="key"/>.</summary>
    public void Record(string key)
    {
        if (!all && keys.TryAdd(key, 0)) Interlocked.Increment(ref version);
    }

    /// <summary>Records that the whole config was read.</summary>
    public void RecordAll()
    {
        if (all) return;
        all = true;
        Interlocked.Increment(ref version);
    }

    /// <summary>
    /// What <paramref name="cfg"/> holds under the knobs read so far, as one string: equal for two configs exactly when
    /// code that read only these knobs sees the same values in both. With the version, so it changes when more knobs are read.
    /// </summary>
    public string Signature(Config cfg)
    {
        var v = Version;
        if (All) return $"{v}:{cfg.ToJson()}";
        var parts = keys.Keys.Order(StringComparer.Ordinal)
            .Select(k => cfg.TryGetValue(k, out var value) ? $"{k}={ConfigValue.ToJson(value)}" : $"{k} (absent)");
        return $"{v}:{string.Join(",", parts)}";
    }
}
