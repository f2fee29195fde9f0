namespace RapidFire.Actors.Scheduling;

/// <summary>What a device does for a run next.</summary>
public enum TaskKind
{
    /// <summary>Train one chunk of an epoch: forward, backward and optimizer step per minibatch.</summary>
    Train,
    /// <summary>Validate at the end of an epoch: forward only, over the whole validation partition.</summary>
    Validate,
}

/// <summary>One unit of work for a device: (run, epoch, chunk) to train, or (run, epoch) to validate.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Kind">Train a chunk or validate.</param>
/// <param name="Epoch">The 0-based epoch the task belongs to.</param>
/// <param name="Chunk">The 0-based chunk to train; 0 for validation.</param>
public sealed record RunTask(int RunId, TaskKind Kind, int Epoch, int Chunk)
{
    /// <summary>A chunk to train.</summary>
    public static RunTask Train(int runId, int epoch, int chunk) => new(runId, TaskKind.Train, epoch, chunk);

    /// <summary>The validation of an epoch.</summary>
    public static RunTask Validate(int runId, int epoch) => new(runId, TaskKind.Validate, epoch, 0);

    /// <inheritdoc />
    public override string ToString() => Kind == TaskKind.Train
        ? $"run {RunId} epoch {Epoch + 1} chunk {Chunk + 1}"
        : $"run {RunId} epoch {Epoch + 1} validation";
}

/// <summary>What the scheduling policy needs to know of a run: its progress and its next task, if it has one.</summary>
/// <param name="RunId">The run.</param>
/// <param name="EpochsDone">Epochs completed.</param>
/// <param name="ChunksDone">Chunks trained in the current epoch.</param>
/// <param name="NextTask">The run's next task; null while it waits (closing an epoch) or when it has ended.</param>
/// <param name="NumDevices">The devices the run asks for (its <c>num_devices</c> knob); null for auto.</param>
public sealed record RunProgress(int RunId, int EpochsDone, int ChunksDone, RunTask? NextTask, int? NumDevices = null);

/// <summary>
/// A task given to a device, <paramref name="DeviceId"/>, which leads it; on several devices, the
/// <paramref name="Followers"/> train the other shards of each minibatch (see <see cref="DataParallel"/>).
/// </summary>
public sealed record Assignment(string DeviceId, RunTask Task, IReadOnlyList<string>? Followers = null)
{
    /// <summary>Every device of the task, the leader first.</summary>
    public IReadOnlyList<string> Devices => [DeviceId, .. Followers ?? []];
}
