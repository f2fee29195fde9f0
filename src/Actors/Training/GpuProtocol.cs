using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Training;

/// <summary>Messages of the GpuActors.</summary>
public static class GpuProtocol
{
    /// <summary>
    /// Run <paramref name="Task"/> for the run of <paramref name="Config"/>, which has <paramref name="ChunksPerEpoch"/>
    /// chunks per epoch. When the run's state is not in host memory (after a resume), it is restored from
    /// <paramref name="Checkpoint"/>, its newest durable checkpoint (none: a fresh model).
    /// </summary>
    public sealed record RunTaskOn(RunTask Task, Config Config, int ChunksPerEpoch, CheckpointRef? Checkpoint);

    /// <summary>Abandon the current task (the fit is cancelled); the device reports it as cancelled.</summary>
    public sealed record CancelTask;

    /// <summary>Ask what the device is doing; answered with <see cref="DeviceStatus"/>.</summary>
    public sealed record GetDeviceStatus;

    /// <summary>What a device is doing: its task (null when idle) and how far it got.</summary>
    public sealed record DeviceStatus(string DeviceId, RunTask? Task, int MinibatchesDone, int MinibatchesTotal);

    /// <summary>How a task used the device: minibatches, seconds computing, seconds waiting for prepared minibatches.</summary>
    public sealed record TaskTiming(int Minibatches, double BusySeconds, double WaitSeconds);

    /// <summary>How a task ended.</summary>
    public abstract record TaskOutcome;

    /// <summary>
    /// A chunk was trained: its mean loss over examples, its minibatch records, and the checkpoint of the run's state
    /// captured in host memory after it (waiting in the pending checkpoints; null when not checkpointed).
    /// </summary>
    public sealed record Trained(double MeanLoss, TaskTiming Timing, IReadOnlyList<MinibatchRecord> Records, CheckpointRef? Checkpoint) : TaskOutcome;

    /// <summary>A validation pass ran; its minibatch records.</summary>
    public sealed record Validated(TaskTiming Timing, IReadOnlyList<MinibatchRecord> Records) : TaskOutcome;

    /// <summary>The task failed the run.</summary>
    public sealed record Failed(RunFailure Failure) : TaskOutcome;

    /// <summary>The task was abandoned by <see cref="CancelTask"/>.</summary>
    public sealed record Cancelled : TaskOutcome;

    /// <summary>A device finished a task, told to the experiment.</summary>
    public sealed record TaskFinished(string DeviceId, RunTask Task, TaskOutcome Outcome);
}
