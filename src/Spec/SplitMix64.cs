namespace RapidFire.Spec;

/// <summary>
/// A small seeded generator (SplitMix64) whose sequence is the same on every platform and .NET version, unlike
/// <see cref="System.Random"/>'s: data samples and epoch shuffles must be reproducible from a seed.
/// </summary>
public struct SplitMix64
{
    private ulong state;

    /// <summary>Starts the sequence of <paramref name="seed"/>.</summary>
    public SplitMix64(long seed) => state = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform integer in [0, <paramref name="bound"/>).</summary>
    public uint NextBounded(uint bound) => (uint)(((NextUInt64() >> 32) * bound) >> 32);

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher-Yates), or only its first <paramref name="count"/> draws.</summary>
    public void Shuffle<T>(T[] items, int? count = null)
    {
        var draws = count ?? items.Length;
        for (var i = 0; i < draws && i < items.Length - 1; i++)
        {
            var j = i + (int)NextBounded((uint)(items.Length - i));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Mixes several values into one seed (for per-epoch or per-chunk streams of a run).</summary>
    public static long Mix(params long[] values)
    {
        var rng = new SplitMix64(values.Length);
        ulong h = rng.NextUInt64();
        foreach (var v in values)
        {
            rng = new SplitMix64(unchecked((long)(h ^ (ulong)v)));
            h = rng.NextUInt64();
        }
        return unchecked((long)h);
    }
}
