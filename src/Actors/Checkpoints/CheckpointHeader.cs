namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// What a checkpoint says about itself, stored as a small JSON object ahead of the payload (see
/// <see cref="CheckpointFile"/>). It names the same run, epoch and chunk as the checkpoint's <see cref="CheckpointRef"/>.
/// </summary>
/// <param name="RunId">The run's id.</param>
/// <param name="Epoch">The 0-based epoch of the last completed chunk.</param>
/// <param name="Chunk">The 0-based chunk of the last completed chunk.</param>
/// <param name="Seed">The run's seed (its model was created under it).</param>
/// <param name="SchedulerSteps">
/// How many times the run's learning-rate scheduler was stepped after it was created: a restore replays that many
/// <c>step()</c> calls on a fresh scheduler (see <see cref="RunStateCodec.RestoreInto"/>).
/// </param>
/// <param name="CreatedUtc">When the checkpoint was taken.</param>
/// <param name="State">The caller's serialized run state (JSON), opaque to the store.</param>
public sealed record CheckpointHeader(
    int RunId,
    int Epoch,
    int Chunk,
    long Seed,
    int SchedulerSteps,
    DateTimeOffset CreatedUtc,
    string State)
{
    /// <summary>
    /// How many times a run's scheduler has stepped at <paramref name="key"/>: once per finished epoch (a device steps
    /// it after an epoch's last chunk), none when <paramref name="config"/> has no <c>lr_scheduler</c>.
    /// </summary>
    public static int SchedulerStepsAt(CheckpointRef key, int chunksPerEpoch, RapidFire.Spec.Config config) =>
        config.LrScheduler is null ? 0 : key.Epoch + (key.Chunk == chunksPerEpoch - 1 ? 1 : 0);

    /// <summary>The key this header belongs under.</summary>
    public CheckpointRef Ref => new(RunId, Epoch, Chunk);

    /// <summary>A store's check before saving: the header must name <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">It names another run, epoch or chunk.</exception>
    public void RequireFor(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!Describes(key))
            throw new ArgumentException(
                $"the header names run {RunId} epoch {Epoch} chunk {Chunk}, but the checkpoint is saved as {key}", "header");
    }

    /// <summary>Whether the header names the run, epoch and chunk of <paramref name="key"/>.</summary>
    public bool Describes(CheckpointRef key) => key.RunId == RunId && key.Epoch == Epoch && key.Chunk == Chunk;
}

/// <summary>A loaded checkpoint: its header and payload, the payload's integrity already verified.</summary>
/// <param name="Ref">Its key.</param>
/// <param name="Header">Its header.</param>
/// <param name="Payload">The run's trainable state (see <see cref="RunStateCodec"/>).</param>
/// <param name="Source">Where it was read from (a path or URI), for messages.</param>
public sealed record Checkpoint(CheckpointRef Ref, CheckpointHeader Header, ReadOnlyMemory<byte> Payload, string Source);

/// <summary>
/// A checkpoint that cannot be read: truncated, not a checkpoint, of an unknown format version, with a header that
/// does not parse or does not match its name, or with content that fails its SHA-256. The message names the file.
/// </summary>
public sealed class CheckpointCorruptException : IOException
{
    /// <summary>Creates the exception for the checkpoint at <paramref name="source"/>.</summary>
    /// <param name="source">The file's path or URI.</param>
    /// <param name="problem">What is wrong with it.</param>
    /// <param name="inner">The error that revealed it, if any.</param>
    public CheckpointCorruptException(string source, string problem, Exception? inner = null)
        : base($"checkpoint '{source}' is corrupt: {problem}", inner)
    {
        Location = source;
        Problem = problem;
    }

    /// <summary>The file's path or URI.</summary>
    public string Location { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}
