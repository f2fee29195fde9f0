namespace RapidFire.Spec.Data;

/// <summary>
/// The seeded sample a data handle's <c>fraction</c> takes of every partition: round(fraction × N) rows (halves
/// round up; at least one row when N &gt; 0), chosen uniformly at random with the handle's seed and kept in the
/// file's row order. The generator is <see cref="SplitMix64"/>, so that the same seed picks the same rows on every platform and
/// .NET version.
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
        new SplitMix64(seed).Shuffle(positions, size);
        var sample = positions[..size];
        Array.Sort(sample);
        return sample;
    }
}
