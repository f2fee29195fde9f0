using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;

namespace RapidFire.Actors.Training;

/// <summary>How a device names what failed a task: the run, the device, the mode, epoch and chunk.</summary>
internal static class TaskFailures
{
    /// <summary>
    /// A failure of run <paramref name="runId"/> on <paramref name="deviceId"/>. Running out of device memory says so,
    /// naming the run and the device: the run fails, the others go on.
    /// </summary>
    public static RunFailure Named(RunFailure failure, int runId, string deviceId) =>
        failure.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) && !failure.Message.StartsWith($"run {runId} ", StringComparison.Ordinal)
            ? failure with { Message = $"run {runId} does not fit on {deviceId} (out of memory): {failure.Message}" }
            : failure;

    /// <summary><paramref name="failure"/> with the mode, epoch and chunk (1-based) of <paramref name="task"/> where it does not say them.</summary>
    public static RunFailure Where(RunFailure failure, RunTask? task)
    {
        if (task is null) return failure;
        return failure with
        {
            Mode = failure.Mode ?? (task.Kind == TaskKind.Train ? "train" : "validation"),
            Epoch = failure.Epoch ?? task.Epoch + 1,
            Chunk = failure.Chunk ?? (task.Kind == TaskKind.Train ? task.Chunk + 1 : null),
        };
    }
}
