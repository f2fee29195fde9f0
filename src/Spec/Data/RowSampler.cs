namespace RapidFire.Spec.Data;

/// <summary>
/// The seeded sample a data handle's <c>fraction</c> takes of every partition: round(fraction × N) rows (halves
/// round up; at least one row when N &gt; 0), chosen uniformly at random with the handle's seed and kept in the
/// file's row order. The generator is SplitMix64, written out here rather than taken from
/// <see cref="System.Random"/>, so that the same seed picks the same rows on every platform and .NET version.
/// </summary>
public static class RowSampler
{
    /// <summary>How many of <paramref name="rowCount"/> rows a sample with <paramref name="fraction"/> keeps.</summary>
    public static int SampleSize(int rowCount, double fraction)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "fraction must be in (0, 1]");
        if (rowCount == 0)
            return 0;
        var size = (int)Math.Round(fraction * rowCount, MidpointRounding.AwayFromZero);
        return Math.Clamp(size, 1, rowCount);
    }

    /// <summary>
    /// The 0-based positions of the sampled rows, ascending. With <paramref name="fraction"/> 1 every row is kept.
    /// </summary>
    public static int[] Sample(int rowCount, double fraction, int seed)
    {
        var size = SampleSize(rowCount, fraction);
        var positions = new int[rowCount];
        for (var i = 0; i < rowCount; i++)
            positions[i] = i;
        if (size == rowCount)
            return positions;

        // A partial Fisher-Yates shuffle draws `size` distinct positions; sorting them keeps the file's order.
        var state = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL);
        for (var i = 0; i < size; i++)
        {
            var j = i + (int)Bounded(ref state, (uint)(rowCount - i));
            (positions[i], positions[j]) = (positions[j], positions[i]);
        }
        var sample = positions[..size];
        Array.Sort(sample);
        return sample;
    }

    private static uint Bounded(ref ulong state, uint bound) =>
        (uint)((NextUInt32(ref state) * (ulong)bound) >> 32);

    private static ulong NextUInt32(ref ulong state)
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (z ^ (z >> 31)) >> 32;
    }
}
