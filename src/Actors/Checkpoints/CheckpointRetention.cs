namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// Which of a run's checkpoints to delete: a pure policy over keys, with no store behind it.
/// </summary>
/// <remarks>
/// Kept, whatever else holds:
/// <list type="bullet">
/// <item>the final checkpoint, the newest one;</item>
/// <item>every epoch-end checkpoint (chunk <c>chunksPerEpoch - 1</c>): features that pick <c>final</c>,
/// <c>best:&lt;metric&gt;</c> or <c>epoch:&lt;n&gt;</c> choose among them;</item>
/// <item>while the run has not ended, the <see cref="KeepLast"/> newest ones, so a resume has a fallback when the
/// newest turns out damaged. Once the run has ended this window is released: only epoch ends and the final remain.</item>
/// </list>
/// Everything else is deleted.
/// </remarks>
public sealed record CheckpointRetention
{
    /// <summary>The default number of newest checkpoints kept while a run trains.</summary>
    public const int DefaultKeepLast = 2;

    /// <summary>A policy keeping the <paramref name="keepLast"/> newest checkpoints of a training run (at least 1).</summary>
    public CheckpointRetention(int keepLast = DefaultKeepLast)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(keepLast, 1);
        KeepLast = keepLast;
    }

    /// <summary>The policy with <see cref="DefaultKeepLast"/>.</summary>
    public static CheckpointRetention Default { get; } = new();

    /// <summary>How many of the newest checkpoints of a run that has not ended are kept.</summary>
    public int KeepLast { get; }

    /// <summary>Whether <paramref name="key"/> holds the end of its epoch (its last chunk).</summary>
    public static bool IsEpochEnd(CheckpointRef key, int chunksPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunksPerEpoch, 1);
        return key.Chunk == chunksPerEpoch - 1;
    }

    /// <summary>
    /// The checkpoints of one run to delete, oldest first.
    /// </summary>
    /// <param name="existing">The run's checkpoints, in any order (duplicates are ignored).</param>
    /// <param name="chunksPerEpoch">The run's chunks per epoch; no checkpoint may have a chunk at or beyond it.</param>
    /// <param name="runEnded">Whether the run has ended (completed, failed, stopped): its rolling window is released.</param>
    /// <exception cref="ArgumentException">The keys belong to several runs, or one has a chunk beyond <paramref name="chunksPerEpoch"/>.</exception>
    public IReadOnlyList<CheckpointRef> SelectForDeletion(IEnumerable<CheckpointRef> existing, int chunksPerEpoch, bool runEnded)
    {
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunksPerEpoch, 1);
        var keys = existing.Distinct().Order().ToList();
        if (keys.Count == 0) return [];
        if (keys.FirstOrDefault(k => k.RunId != keys[0].RunId) is { } foreign)
            throw new ArgumentException($"retention applies to one run at a time, but got checkpoints of run {keys[0].RunId} and run {foreign.RunId}", nameof(existing));
        if (keys.FirstOrDefault(k => k.Chunk >= chunksPerEpoch) is { } beyond)
            throw new ArgumentException($"checkpoint {beyond} has a chunk beyond the run's {chunksPerEpoch} chunks per epoch", nameof(existing));

        var window = runEnded ? 1 : KeepLast; // the final one is the newest: a window of one keeps exactly it
        var firstKept = keys.Count - window;
        return keys.Where((key, i) => i < firstKept && !IsEpochEnd(key, chunksPerEpoch)).ToList();
    }
}
