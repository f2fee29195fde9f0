namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// Where runs' checkpoints are kept: a local folder (<see cref="LocalCheckpointStore"/>) or, by configuration, an
/// object store. Every store writes the <see cref="CheckpointFile"/> format under <see cref="CheckpointRef.RelativePath"/>.
/// </summary>
/// <remarks>
/// Saves of different runs may run concurrently from several threads. Saves, deletes and prunes of one run are the
/// caller's to serialize (its RunActor does one thing at a time).
/// </remarks>
public interface ICheckpointStore
{
    /// <summary>
    /// Stores a checkpoint, replacing one under the same key. The task completes only once the checkpoint is durable:
    /// a crash at any moment leaves either the previous checkpoint under that key or the new one, whole.
    /// </summary>
    /// <param name="key">The checkpoint's key; <paramref name="header"/> must name the same run, epoch and chunk.</param>
    /// <param name="header">Its header.</param>
    /// <param name="payload">The run's trainable state (see <see cref="RunStateCodec.Capture"/>).</param>
    /// <param name="cancellationToken">Cancels the save before the checkpoint is published; the previous one stays.</param>
    Task SaveAsync(CheckpointRef key, CheckpointHeader header, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads a checkpoint, verifying its integrity. A missing checkpoint is a <see cref="FileNotFoundException"/>
    /// and a damaged one a <see cref="CheckpointCorruptException"/>, both naming it.
    /// </summary>
    Checkpoint Load(CheckpointRef key);

    /// <summary>A run's checkpoints, oldest first (by epoch, then chunk). Temporary and foreign files are not listed.</summary>
    IReadOnlyList<CheckpointRef> List(int runId);

    /// <summary>Removes a checkpoint; removing one that does not exist does nothing.</summary>
    void Delete(CheckpointRef key);

    /// <summary>Where the checkpoint is (a full path or a URI), for messages.</summary>
    string Describe(CheckpointRef key);
}
