namespace RapidFire.Actors.Checkpoints;

/// <summary>Retention applied to a store.</summary>
public static class CheckpointStoreExtensions
{
    /// <summary>
    /// Deletes the run's checkpoints that <paramref name="retention"/> does not keep and returns them, oldest first.
    /// </summary>
    /// <param name="store">The store.</param>
    /// <param name="runId">The run.</param>
    /// <param name="chunksPerEpoch">The run's chunks per epoch.</param>
    /// <param name="retention">The policy.</param>
    /// <param name="runEnded">Whether the run has ended (see <see cref="CheckpointRetention"/>).</param>
    public static IReadOnlyList<CheckpointRef> Prune(this ICheckpointStore store, int runId, int chunksPerEpoch,
        CheckpointRetention retention, bool runEnded = false)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(retention);
        var doomed = retention.SelectForDeletion(store.List(runId), chunksPerEpoch, runEnded);
        foreach (var key in doomed) store.Delete(key);
        return doomed;
    }

    /// <summary>
    /// Saves a checkpoint durably, then prunes its run's older ones (never the one just saved). Returns the deleted
    /// keys, oldest first. The prune runs only after the save completed, so a failed save deletes nothing.
    /// </summary>
    /// <param name="store">The store.</param>
    /// <param name="key">The new checkpoint's key.</param>
    /// <param name="header">Its header.</param>
    /// <param name="payload">Its payload.</param>
    /// <param name="chunksPerEpoch">The run's chunks per epoch.</param>
    /// <param name="retention">The policy.</param>
    /// <param name="runEnded">Whether the run has ended with this checkpoint.</param>
    /// <param name="cancellationToken">Cancels the save (see <see cref="ICheckpointStore.SaveAsync"/>).</param>
    public static async Task<IReadOnlyList<CheckpointRef>> SaveAndPruneAsync(this ICheckpointStore store, CheckpointRef key,
        CheckpointHeader header, ReadOnlyMemory<byte> payload, int chunksPerEpoch, CheckpointRetention retention,
        bool runEnded = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(retention);
        await store.SaveAsync(key, header, payload, cancellationToken).ConfigureAwait(false);
        var doomed = retention.SelectForDeletion(store.List(key.RunId), chunksPerEpoch, runEnded)
            .Where(k => k != key)
            .ToList();
        foreach (var k in doomed) store.Delete(k);
        return doomed;
    }
}
