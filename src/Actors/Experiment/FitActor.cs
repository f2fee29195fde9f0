using Akka.Actor;
using Akka.Routing;
using RapidFire.Actors.Data;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// One fit of an experiment. It starts a RunActor per config, a GpuActor per device, the DataLoaderActor pool and
/// the MetricsActor; then, whenever a device is free or a run moves on, it asks the <see cref="SchedulingPolicy"/>
/// for the next (run, epoch, chunk) tasks and hands them out, until every run has ended.
/// </summary>
/// <remarks>
/// <code>
/// Ready --RunFit--> Fitting --every run ended, devices idle--> Ready
///                        '--CancelFit--> Fitting (cancelling) --> Ready
/// </code>
/// Run states and device events are published on the event stream (<see cref="RunUpdated"/>,
/// <see cref="TaskFinished"/>) for observers.
/// </remarks>
public sealed class FitActor : ReceiveActor
{
    private readonly TrainingServices services;
    private readonly IReadOnlyList<DeviceSlot> devices;
    private readonly Dictionary<int, IActorRef> runActors = [];
    private readonly Dictionary<string, IActorRef> gpus = [];
    private readonly List<IActorRef> fitActors = [];
    private FitState fit;
    private IActorRef? requester;

    /// <summary>Props of a fit training on <paramref name="devices"/>.</summary>
    public static Props Props(TrainingServices services, IReadOnlyList<DeviceSlot> devices) =>
        Akka.Actor.Props.Create(() => new FitActor(services, devices));

    /// <summary>Creates the actor.</summary>
    public FitActor(TrainingServices services, IReadOnlyList<DeviceSlot> devices)
    {
        this.services = services;
        this.devices = devices;
        fit = new FitState(devices.Select(d => d.Id).ToList());
        Ready();
    }

    private void Ready()
    {
        Receive<RunFit>(Start);
        Receive<GetStatus>(_ => Sender.Tell(Status(fitting: false)));
        Receive<CancelFit>(_ => { });
    }

    private void Fitting()
    {
        Receive<RunUpdated>(updated =>
        {
            fit = fit.WithRun(updated.State, updated.Recovered);
            // A recovered run's resting model may be ahead of its journal: the next task restores it from a checkpoint.
            if (updated.Recovered && !fit.IsRunning(updated.State.RunId)) services.Models.Release(updated.State.RunId);
            Context.System.EventStream.Publish(updated);
            if (updated.State.IsEnded) services.Specs.Remove(updated.State.RunId);
            Advance();
        });
        Receive<TaskFinished>(finished =>
        {
            fit = fit.DeviceFreed(finished.DeviceId);
            Context.System.EventStream.Publish(finished);
            runActors[finished.Task.RunId].Tell(finished.Outcome switch
            {
                Trained trained => new ChunkTrained(finished.Task, trained.MeanLoss, trained.Records, trained.Checkpoint),
                Validated validated => new ValidationFinished(finished.Task, validated.Records),
                Failed failed => new FailRun(failed.Failure),
                _ => new StopRun(EndReason.Cancelled),
            });
            Advance();
        });
        Receive<CancelFit>(_ =>
        {
            fit = fit with { Cancelling = true };
            foreach (var device in fit.Busy.Keys) gpus[device].Tell(new CancelTask());
            foreach (var run in fit.Runs.Values.Where(r => !r.IsEnded)) runActors[run.RunId].Tell(new StopRun(EndReason.Cancelled));
            Advance();
        });
        Receive<GetStatus>(_ => Sender.Tell(Status(fitting: true)));
        Receive<RunFit>(_ => Sender.Tell(new Status.Failure(new InvalidOperationException("a fit is already in progress"))));
    }

    private void Start(RunFit start)
    {
        int chunksPerEpoch(Config cfg) => EpochPlan.ChunksFor(services.Partition(Mode.Train).RowCount, cfg.BatchSize, services.Settings.Chunks);
        bool hasValidation;
        try
        {
            if (start.Runs.Count == 0) throw new ArgumentException("the fit has no runs");
            services.Partition(Mode.Train);
            hasValidation = services.HasPartition(Mode.Validation);
            if (hasValidation) services.Partition(Mode.Validation);
        }
        catch (Exception e) when (e is RapidFireException or ArgumentException)
        {
            Sender.Tell(new Status.Failure(e));
            return;
        }

        requester = Sender;
        fit = new FitState(devices.Select(d => d.Id).ToList());
        var metrics = Track(Context.ActorOf(MetricsActor.Props(services), "metrics"));
        var loaders = Track(Context.ActorOf(DataLoaderActor.Props(services).WithRouter(new SmallestMailboxPool(services.Settings.LoaderCount)), "loaders"));
        gpus.Clear();
        foreach (var device in devices)
            gpus[device.Id] = Track(Context.ActorOf(GpuActor.Props(device, services, loaders), $"device-{device.Id.Replace(':', '-')}"));
        runActors.Clear();
        foreach (var run in start.Runs)
        {
            var initial = new RunState(run.RunId, run.Config);
            fit = fit.WithRun(initial);
            runActors[run.RunId] = Track(Context.ActorOf(RunActor.SupervisedProps(run.RunId, run.Config, Self, metrics, services), $"run-{run.RunId}"));
            runActors[run.RunId].Tell(new StartRun(chunksPerEpoch(run.Config), hasValidation));
        }
        Become(Fitting);
    }

    private IActorRef Track(IActorRef child)
    {
        fitActors.Add(child);
        return child;
    }

    /// <summary>Hands out tasks to free devices, or ends the fit when nothing is left.</summary>
    private void Advance()
    {
        var (next, assignments) = fit.Schedule();
        fit = next;
        foreach (var assignment in assignments)
        {
            var run = fit.Runs[assignment.Task.RunId];
            gpus[assignment.DeviceId].Tell(new RunTaskOn(assignment.Task, run.Config, run.ChunksPerEpoch, run.LastCheckpoint));
        }
        if (!fit.IsDone) return;

        requester?.Tell(new FitCompleted(fit.Runs.Values.ToList(), fit.Cancelling));
        requester = null;
        foreach (var child in fitActors) Context.Stop(child);
        fitActors.Clear();
        Become(Ready);
    }

    private FitStatus Status(bool fitting) => new(fit.Runs.Values.ToList(), fit.Busy, fitting);
}
