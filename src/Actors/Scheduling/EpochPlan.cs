using RapidFire.Spec;

namespace RapidFire.Actors.Scheduling;

/// <summary>
/// The minibatches of one pass over a partition, cut into chunks: which rows (positions in the partition) form
/// each minibatch. Training shuffles the rows once per epoch from the run's seed, so a run sees the same data
/// order whether it trains alone or interleaved with others; evaluation keeps the file's order.
/// </summary>
/// <remarks>
/// There are ceil(rows / batch size) minibatches (the last may be smaller), cut into
/// min(chunks, minibatches) chunks of nearly equal size: chunk c holds minibatches
/// [floor(c·M/C), floor((c+1)·M/C)).
/// </remarks>
public sealed class EpochPlan
{
    private readonly int[] order;
    private readonly int batchSize;

    private EpochPlan(int[] order, int batchSize, int chunks)
    {
        this.order = order;
        this.batchSize = batchSize;
        MinibatchCount = (order.Length + batchSize - 1) / batchSize;
        ChunkCount = Math.Max(1, Math.Min(chunks, MinibatchCount));
    }

    /// <summary>The number of minibatches in the pass.</summary>
    public int MinibatchCount { get; }

    /// <summary>The number of chunks the pass is cut into.</summary>
    public int ChunkCount { get; }

    /// <summary>The training plan of <paramref name="epoch"/>: rows shuffled by (seed, epoch).</summary>
    public static EpochPlan ForTraining(int rowCount, int batchSize, int chunks, long seed, int epoch)
    {
        var order = Positions(rowCount, batchSize, chunks);
        new SplitMix64(SplitMix64.Mix(seed, epoch)).Shuffle(order);
        return new EpochPlan(order, batchSize, chunks);
    }

    /// <summary>The evaluation plan (validation, test, predict): rows in file order, one chunk.</summary>
    public static EpochPlan ForEvaluation(int rowCount, int batchSize) =>
        new(Positions(rowCount, batchSize, 1), batchSize, 1);

    /// <summary>How many chunks a training pass over <paramref name="rowCount"/> rows has.</summary>
    public static int ChunksFor(int rowCount, int batchSize, int chunks) =>
        Math.Max(1, Math.Min(chunks, (rowCount + batchSize - 1) / batchSize));

    /// <summary>The index of the first minibatch of <paramref name="chunk"/> (the pass's minibatch count for <see cref="ChunkCount"/>).</summary>
    public int FirstMinibatch(int chunk) => (int)((long)chunk * MinibatchCount / ChunkCount);

    /// <summary>The row positions of each minibatch of <paramref name="chunk"/>, in training order.</summary>
    public IReadOnlyList<int[]> Chunk(int chunk)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(chunk);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(chunk, ChunkCount);
        return Enumerable.Range(FirstMinibatch(chunk), FirstMinibatch(chunk + 1) - FirstMinibatch(chunk)).Select(Minibatch).ToList();
    }

    /// <summary>The row positions of minibatch <paramref name="index"/>.</summary>
    public int[] Minibatch(int index)
    {
        var start = index * batchSize;
        return order[start..Math.Min(start + batchSize, order.Length)];
    }

    private static int[] Positions(int rowCount, int batchSize, int chunks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 1);
        return Enumerable.Range(0, rowCount).ToArray();
    }
}
