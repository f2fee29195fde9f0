using System.Diagnostics;
using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Data;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using TorchSharp;
using static RapidFire.Actors.Data.DataLoaderProtocol;
using RapidFire.Actors.Metrics;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Training;

/// <summary>
/// One device. For a task it swaps the run's model, optimizer and scheduler in, trains the chunk (or validates)
/// on minibatches the DataLoaderActors prepare a bounded number ahead, and swaps the state out to host memory.
/// </summary>
/// <remarks>
/// It runs on its own thread (TorchSharp's dispose scopes and <c>no_grad</c> are thread-local) and handles one
/// minibatch per message, so status queries and a cancel are answered between minibatches.
/// <code>
/// Idle --RunTaskOn--> Working --last minibatch | failure | CancelTask--> Idle
/// </code>
/// </remarks>
public sealed class GpuActor : ReceiveActor
{
    /// <summary>Process the next minibatch of task <paramref name="Serial"/>; at most one is queued at a time.</summary>
    private sealed record ProcessNext(long Serial);

    private readonly DeviceSlot device;
    private readonly TrainingServices services;
    private readonly IActorRef loaders;
    private long serial;
    private bool nudged;
    private ActiveTask? active;

    /// <summary>Props of the actor of <paramref name="device"/>, on its own thread.</summary>
    public static Props Props(DeviceSlot device, TrainingServices services, IActorRef loaders) =>
        Akka.Actor.Props.Create(() => new GpuActor(device, services, loaders)).WithDispatcher("rapidfire.gpu-dispatcher");

    /// <summary>Creates the actor.</summary>
    public GpuActor(DeviceSlot device, TrainingServices services, IActorRef loaders)
    {
        this.device = device;
        this.services = services;
        this.loaders = loaders;
        Idle();
    }

    private void Idle()
    {
        Receive<RunTaskOn>(Start);
        Receive<MinibatchReady>(stale => services.Exchange.Discard(stale.Key));
        Receive<MinibatchFailed>(_ => { });
        Receive<ProcessNext>(_ => { });
        Receive<CancelTask>(_ => { });
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(device.Id, null, 0, 0)));
    }

    private void Working()
    {
        Receive<MinibatchReady>(ready =>
        {
            if (ready.Key.TaskSerial != serial) services.Exchange.Discard(ready.Key);
            else
            {
                active!.Arrived(ready.Key.Index);
                Nudge();
            }
        });
        Receive<MinibatchFailed>(failed =>
        {
            if (failed.Key.TaskSerial == serial) End(new Failed(Where(failed.Failure)));
        });
        Receive<ProcessNext>(next =>
        {
            if (next.Serial != serial) return;
            nudged = false;
            Guarded(ProcessOne);
            if (active is not null) Nudge();
        });
        Receive<CancelTask>(_ => End(new Cancelled()));
        Receive<GetDeviceStatus>(_ => Sender.Tell(new DeviceStatus(device.Id, active!.Task, active.Done, active.Minibatches.Count)));
    }

    private void Start(RunTaskOn order)
    {
        serial++;
        nudged = false;
        var task = order.Task;
        var cfg = order.Config;
        var mode = task.Kind == TaskKind.Train ? Mode.Train : Mode.Validation;
        RunModel? state = null;
        try
        {
            var seed = services.SeedOf(cfg);
            var trainSpec = services.Specs.Get(task.RunId, cfg, Mode.Train);
            var spec = services.Specs.Get(task.RunId, cfg, mode);
            var rows = SpecCall.Run("data", () => services.Partition(mode).RowCount);
            var plan = task.Kind == TaskKind.Train
                ? EpochPlan.ForTraining(rows, cfg.BatchSize, services.Settings.Chunks, seed, task.Epoch)
                : EpochPlan.ForEvaluation(rows, cfg.BatchSize);
            state = services.Models.CheckOut(task.RunId, () => Restored(task.RunId, RunModel.Create(trainSpec, cfg, seed), order.Checkpoint));
            SpecCall.Run("device", () => state.MoveTo(device.TorchDevice));
            if (task.Kind == TaskKind.Train)
                lock (TorchRandom.Lock) torch.manual_seed(SplitMix64.Mix(seed, task.Epoch, task.Chunk));
            active = new ActiveTask(order, mode, state, new MinibatchTrainer(spec, cfg), plan.Chunk(task.Chunk), plan.FirstMinibatch(task.Chunk));
        }
        catch (Exception e)
        {
            if (state is not null) services.Models.Release(task.RunId, state);
            Context.Parent.Tell(new TaskFinished(device.Id, task, new Failed(Where(RunFailureException.Of(e), task))));
            return;
        }
        Become(Working);
        RequestAhead();
    }

    /// <summary>
    /// A fresh run state, brought to the trained state a warm clone copied from its parent, or else to its newest
    /// durable checkpoint when it has one (after a resume).
    /// </summary>
    private RunModel Restored(int runId, RunModel fresh, CheckpointRef? checkpoint)
    {
        services.WarmStarts.TryRemove(runId, out var warm);
        if (warm is null && (checkpoint is null || services.Checkpoints is null)) return fresh;
        try
        {
            SpecCall.Run("checkpoint", () => RunStateCodec.RestoreInto(fresh, warm ?? services.Checkpoints!.Load(checkpoint!)));
            return fresh;
        }
        catch
        {
            fresh.Dispose();
            throw;
        }
    }

    private void ProcessOne()
    {
        var task = active!;
        if (!task.IsReady) return;
        var prepared = services.Exchange.Take(Key(task.Done));
        var result = task.Step(prepared.Batch);
        var record = new MinibatchRecord(task.Task.RunId, task.Mode, task.Task.Epoch, task.Task.Kind == TaskKind.Train ? task.Task.Chunk : 0,
            task.FirstStep + task.Done - 1, prepared.Batch.Size, result.Loss, result.Named, result.Values);
        task.Records.Add(record);
        Context.System.EventStream.Publish(record);
        if (task.Done == task.Minibatches.Count)
        {
            End(task.Task.Kind == TaskKind.Train ? new Trained(task.MeanLoss, task.Timing, task.Records, null) : new Validated(task.Timing, task.Records));
            return;
        }
        RequestAhead();
    }

    /// <summary>
    /// Queues the processing of the next minibatch when it is ready, never more than one such message: whatever
    /// else arrives (a status query, a cancel) waits for one minibatch at most.
    /// </summary>
    private void Nudge()
    {
        if (nudged || !active!.IsReady) return;
        nudged = true;
        Self.Tell(new ProcessNext(serial));
    }

    /// <summary>Keeps up to <c>prefetch</c> minibatches prepared or in preparation ahead of the trainer.</summary>
    private void RequestAhead()
    {
        var task = active!;
        while (task.Requested < task.Minibatches.Count && task.Requested - task.Done < services.Settings.Prefetch)
        {
            var index = task.Requested++;
            loaders.Tell(new PrepareMinibatch(Key(index), task.Task.RunId, task.Order.Config, task.Mode, task.Minibatches[index]));
        }
    }

    private void End(TaskOutcome outcome)
    {
        var task = active!;
        active = null;
        for (var i = task.Done; i < task.Requested; i++) services.Exchange.Discard(Key(i));
        var state = task.State;
        if (outcome is Trained or Validated)
        {
            var lastOfEpoch = task.Task.Chunk == task.Order.ChunksPerEpoch - 1;
            if (outcome is Trained && lastOfEpoch) state.Scheduler?.step();
            if (outcome is Trained trained && CheckpointAfter(task.Task, lastOfEpoch))
            {
                // The swap to host memory is synchronous; the run writes the bytes to disk off this thread.
                var key = new CheckpointRef(task.Task.RunId, task.Task.Epoch, task.Task.Chunk);
                services.PendingCheckpoints[key] = RunStateCodec.Capture(state);
                outcome = trained with { Checkpoint = key };
            }
            state.MoveTo("cpu");
            services.Models.CheckIn(task.Task.RunId, state);
        }
        else services.Models.Release(task.Task.RunId, state);
        Context.Parent.Tell(new TaskFinished(device.Id, task.Task, outcome));
        Become(Idle);
    }

    private bool CheckpointAfter(RunTask task, bool lastOfEpoch) =>
        services.Checkpoints is not null && task.Kind == TaskKind.Train &&
        (services.Settings.SaveStrategy == "chunk" || (services.Settings.SaveStrategy == "epoch" && lastOfEpoch));

    private void Guarded(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            End(new Failed(Where(RunFailureException.Of(e))));
        }
    }

    private RunFailure Where(RunFailure failure, RunTask? task = null)
    {
        task ??= active?.Task;
        if (task is null) return failure;
        return failure with
        {
            Mode = failure.Mode ?? (task.Kind == TaskKind.Train ? "train" : "validation"),
            Epoch = failure.Epoch ?? task.Epoch + 1,
            Chunk = failure.Chunk ?? (task.Kind == TaskKind.Train ? task.Chunk + 1 : null),
        };
    }

    private MinibatchKey Key(int index) => new(device.Id, serial, index);

    /// <summary>The transient state of the task in progress; nothing of it is persisted.</summary>
    private sealed class ActiveTask(RunTaskOn order, Mode mode, RunModel state, MinibatchTrainer trainer, IReadOnlyList<int[]> minibatches, int firstStep)
    {
        private readonly HashSet<int> ready = [];
        private readonly Stopwatch busy = new();
        private readonly Stopwatch waiting = Stopwatch.StartNew();
        private double lossSum;
        private long examples;

        public RunTaskOn Order { get; } = order;
        public RunTask Task => Order.Task;
        public Mode Mode { get; } = mode;
        public RunModel State { get; } = state;
        public IReadOnlyList<int[]> Minibatches { get; } = minibatches;
        public int FirstStep { get; } = firstStep;
        public List<MinibatchRecord> Records { get; } = [];
        public int Requested { get; set; }
        public int Done { get; private set; }
        public bool IsReady => ready.Contains(Done);
        public double MeanLoss => examples == 0 ? double.NaN : lossSum / examples;
        public TaskTiming Timing => new(Done, busy.Elapsed.TotalSeconds, waiting.Elapsed.TotalSeconds);

        /// <summary>A minibatch arrived; when it is the next one, processing resumes.</summary>
        public void Arrived(int index)
        {
            ready.Add(index);
            if (index == Done && !busy.IsRunning) waiting.Stop();
        }

        public StepResult Step(Minibatch batch)
        {
            ready.Remove(Done);
            waiting.Stop();
            busy.Start();
            var result = Mode == Mode.Train ? trainer.Train(State, batch) : trainer.Evaluate(State, batch, Mode);
            busy.Stop();
            Done++;
            if (result.Loss is { } loss)
            {
                lossSum += loss * batch.Size;
                examples += batch.Size;
            }
            if (!IsReady) waiting.Start();
            return result;
        }
    }
}
