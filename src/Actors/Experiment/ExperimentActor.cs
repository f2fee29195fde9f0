using Akka.Actor;
using Akka.Persistence;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// One experiment, event-sourced: it journals its creation, each fit (spec, data, settings) and its runs with their
/// configs, and each fit's end. A fit runs in a <see cref="FitActor"/> child; after a crash, <see cref="ResumeFit"/>
/// starts the interrupted fit again from the journal, and its runs recover their own state.
/// </summary>
/// <remarks>
/// <code>
/// Idle --StartFit | ResumeFit--> Fitting --FitCompleted, child stopped--> Idle --EndExperiment--> Ended
/// </code>
/// IC operations (<see cref="RequestControl"/>) are taken one at a time: the fit checks each; the experiment journals
/// it with its verdict (a rejected one with its reason, an accepted clone with its new run) before the fit carries it
/// out, and journals its outcome when it took effect. The journaled operations are the IC log; those accepted and not
/// yet carried out when the process died are carried out by the resumed fit.
/// </remarks>
public sealed class ExperimentActor : ReceivePersistentActor
{
    private readonly string name;
    private readonly Func<RuntimeSettings, TrainingServices.Storage> storage;
    private readonly Func<int> cudaDevices;
    private ExperimentState state = new();
    private IActorRef? fitActor;
    private IActorRef? requester;
    private FitCompleted? completed;
    private int fitId;
    private TrainingServices? services;
    private readonly Queue<(RequestControl Request, IActorRef From)> controlQueue = new();
    private readonly Dictionary<int, IActorRef> controlRequesters = [];
    private bool checking;

    /// <summary>
    /// Props of the experiment <paramref name="name"/>. <paramref name="storage"/> gives a fit its checkpoint store;
    /// <paramref name="cudaDevices"/> counts the CUDA devices (for <c>--devices cuda</c>).
    /// </summary>
    public static Props Props(string name, Func<RuntimeSettings, TrainingServices.Storage> storage, Func<int> cudaDevices) =>
        Akka.Actor.Props.Create(() => new ExperimentActor(name, storage, cudaDevices));

    /// <summary>Creates the actor.</summary>
    public ExperimentActor(string name, Func<RuntimeSettings, TrainingServices.Storage> storage, Func<int> cudaDevices)
    {
        this.name = name;
        this.storage = storage;
        this.cudaDevices = cudaDevices;
        PersistenceId = $"{name}/experiment";
        Recover<IExperimentEvent>(e => state = state.Apply(e));
        Idle();
    }

    /// <inheritdoc />
    public override string PersistenceId { get; }

    /// <summary>
    /// The experiment never saves snapshots, so its recovery does not ask the snapshot store: a new fit's start makes
    /// no snapshot query at all (with a cold SQL journal each new query costs linq2db its build, about 0.1 s).
    /// </summary>
    public override Recovery Recovery { get; } = new(SnapshotSelectionCriteria.None);

    /// <inheritdoc />
    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        var cause = reason.InnerException ?? reason;
        Context.System.EventStream.Publish(new JournalUnavailable(name, $"{cause.GetType().Name}: {cause.Message}"));
        base.OnRecoveryFailure(reason, message);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The experiment's own journal write failed (its disk is full, its database went away): the actor stops, and the
    /// fit with it. Whoever waits for the fit hears why, as an interrupted fit: nothing more was journaled, and a resume
    /// continues it.
    /// </remarks>
    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        var file = Persistence.JournalConfig.SqliteFileOf(Context.System.Settings.Config);
        var problem = $"the journal{(file is null ? "" : $" {file}")} could not record experiment '{name}''s {@event.GetType().Name}: {cause.GetBaseException().Message}";
        if (Storage.OutOfSpace.Is(cause) && file is not null)
            problem = $"{Storage.OutOfSpace.In(Path.GetDirectoryName(file))}: {problem}";
        requester?.Tell(new FitCompleted(completed?.Runs ?? [], false, problem));
        requester = null;
        if (!Storage.OutOfSpace.Is(cause)) base.OnPersistFailure(cause, @event, sequenceNr);
    }

    private void Idle()
    {
        Command<StartFit>(Start);
        Command<ResumeFit>(_ => Resume());
        Command<RebuildFit>(Rebuild);
        Command<EndExperiment>(_ => End());
        Command<GetExperiment>(_ => Sender.Tell(state));
        Command<CancelFit>(_ => { });
        Command<GetStatus>(_ => Sender.Tell(new FitStatus([], new Dictionary<string, Scheduling.RunTask>(), false)));
        Command<RequestControl>(request => Reject(request.Op, Sender, state.Resumable is not null
            ? $"experiment '{name}' has an interrupted fit: resume it (rapidfire resume) before operating on its runs"
            : $"experiment '{name}' has no fit in progress: operations apply to the runs of a running fit"));
        Command<GetControlLog>(_ => Sender.Tell(state.Controls));
        Command<ControlProgress>(Progress);
    }

    private void Fitting()
    {
        Command<FitCompleted>(done =>
        {
            completed = done;
            if (done.Interrupted is not null)
            {
                // Nothing more can be journaled: the fit stays unfinished, and a resume continues it.
                Context.Stop(fitActor);
                return;
            }
            Persist(new FitEnded(fitId, done.Cancelled), e =>
            {
                state = state.Apply(e);
                Context.Stop(fitActor);
            });
        });
        Command<Terminated>(_ => Finish(completed));
        Command<Status.Failure>(failure =>
        {
            // The fit could not start (its data could not be opened): it stays unfinished; say why.
            requester?.Tell(failure);
            requester = null;
            Context.Stop(fitActor);
        });
        Command<CancelFit>(cancel => fitActor.Forward(cancel));
        Command<GetStatus>(query => fitActor.Forward(query));
        Command<RequestControl>(request =>
        {
            controlQueue.Enqueue((request, Sender));
            NextControl();
        });
        Command<ControlChecked>(Checked);
        Command<ControlProgress>(Progress);
        Command<GetControlLog>(_ => Sender.Tell(state.Controls));
        Command<GetExperiment>(_ => Sender.Tell(state));
        Command<StartFit>(_ => Sender.Tell(Busy()));
        Command<ResumeFit>(_ => Sender.Tell(Busy()));
        Command<RebuildFit>(_ => Sender.Tell(Busy()));
        Command<EndExperiment>(_ => Sender.Tell(Busy()));
    }

    private sealed record PreparedFit(TrainingServices Services, IReadOnlyList<DeviceSlot> Devices, FitDefinition Definition, Cluster.WorkerProtocol.JoinFit? Join);

    private Status.Failure Busy() => new(new InvalidOperationException($"experiment '{name}' is running a fit; cancel it or wait"));

    private void Start(StartFit start)
    {
        if (Refused() is { } refusal)
        {
            Sender.Tell(refusal);
            return;
        }
        if (state.Unfinished is { } interrupted)
        {
            Sender.Tell(new Status.Failure(new InvalidOperationException(
                $"experiment '{name}' has an interrupted fit (fit {interrupted.Definition.FitId}); resume it before starting another")));
            return;
        }
        var definition = new FitDefinition(state.NextFitId, start.Spec, start.DataHandleJson, start.DataDirectory, start.Settings, start.Pruning, start.Pbt);
        var runs = start.Configs.Select((cfg, i) => new RunDefinition(state.NextRunId + i, cfg)).ToList();
        if (!TryPrepare(definition, out var prepared)) return;

        var events = new List<IExperimentEvent>();
        if (state.CreatedUtc is null) events.Add(new ExperimentCreated(name, DateTime.UtcNow));
        events.Add(new FitStarted(definition));
        events.Add(new RunsAdded(definition.FitId, runs));
        var from = Sender;
        PersistAll(events, e => state = state.Apply(e));
        DeferAsync(definition, _ => Launch(prepared!, from, fresh: true));
    }

    private void Resume()
    {
        if (Refused() is { } refusal)
        {
            Sender.Tell(refusal);
            return;
        }
        if (state.Resumable is not { } fit)
        {
            Sender.Tell(new NothingToResume(state.Fits.Count == 0
                ? $"experiment '{name}' has no fit"
                : $"every fit of experiment '{name}' has ended"));
            return;
        }
        if (TryPrepare(fit.Definition, out var prepared)) Launch(prepared!, Sender, resumeCancelled: fit.Ended);
    }

    /// <summary>Journals a fit whose journal was lost again, from its manifest, then resumes it from its runs' checkpoints.</summary>
    private void Rebuild(RebuildFit rebuild)
    {
        if (state.Fits.Count > 0)
        {
            Sender.Tell(new Status.Failure(new InvalidOperationException(
                $"experiment '{name}' already has a journal with {state.Fits.Count} fit(s): a fit is rebuilt only into an empty one")));
            return;
        }
        var definition = rebuild.Manifest.Definition;
        if (!TryPrepare(definition, out var prepared)) return;
        var from = Sender;
        PersistAll(new IExperimentEvent[]
        {
            new ExperimentCreated(name, DateTime.UtcNow), new FitStarted(definition), new RunsAdded(definition.FitId, rebuild.Manifest.Runs),
        }, e => state = state.Apply(e));
        DeferAsync(definition, _ => Launch(prepared!, from, fresh: true, rebuilt: rebuild.States));
    }

    /// <summary>Whether this node is a member of an Akka cluster: its fits ask the worker nodes to join.</summary>
    private bool Clustered => Cluster.WorkerProtocol.IsClusterNode(Context.System);

    /// <summary>What a fit asks worker nodes to join with: the spec's source, the data handle, the settings, the shared checkpoint store.</summary>
    private Cluster.WorkerProtocol.JoinFit JoinOf(FitDefinition definition, RuntimeSettings settings, TrainingServices fitServices)
    {
        var location = fitServices.Checkpoints switch
        {
            LocalCheckpointStore local => local.Directory,
            S3CheckpointStore s3 => s3.Root.ToString(),
            null => throw new ArgumentException("a fit on a cluster needs checkpoints (save-strategy chunk or epoch): a run's state moves between nodes through them"),
            var other => throw new ArgumentException($"a fit on a cluster cannot share a {other.GetType().Name} with its workers"),
        };
        return new Cluster.WorkerProtocol.JoinFit($"{name}/{definition.FitId}", Cluster.SpecPackage.From(definition.Spec),
            definition.DataHandleJson, definition.DataDirectory, settings, location);
    }

    private Status.Failure? Refused() => state.Ended
        ? new Status.Failure(new InvalidOperationException($"experiment '{name}' has ended; open a new experiment"))
        : null;

    /// <summary>Builds a fit's services and devices (compiles the spec, checks the settings); a failure is answered, not journaled.</summary>
    private bool TryPrepare(FitDefinition definition, out PreparedFit? prepared)
    {
        prepared = null;
        try
        {
            var settings = definition.Settings with { JournalIdPrefix = $"{name}/" };
            var devices = DeviceSpec.Parse(settings.Devices, cudaDevices);
            // libtorch's intra-op threads are process-wide: the loaders and the CPU workers share the cores.
            TorchSharp.torch.set_num_threads(settings.TorchThreadsFor(devices.Count(d => !d.IsCuda)));
            var data = DataHandle.FromJson(definition.DataHandleJson, definition.DataDirectory);
            var fitServices = new TrainingServices(definition.Spec.Factory(), data, settings, storage(settings));
            prepared = new PreparedFit(fitServices, devices, definition, Clustered ? JoinOf(definition, settings, fitServices) : null);
            return true;
        }
        catch (Exception e) when (e is RapidFireException or ArgumentException or IOException)
        {
            Sender.Tell(new Status.Failure(e));
            return false;
        }
    }

    private void Launch(PreparedFit prepared, IActorRef from, bool resumeCancelled = false, bool fresh = false, IReadOnlyDictionary<int, Runs.RunSnapshot>? rebuilt = null)
    {
        requester = from;
        fitId = prepared.Definition.FitId;
        services = prepared.Services;
        completed = null;
        var runs = state.Fits.Single(f => f.Definition.FitId == prepared.Definition.FitId).Runs;
        fitActor = Context.ActorOf(FitActor.Props(prepared.Services, prepared.Devices, prepared.Join), $"fit-{prepared.Definition.FitId}");
        Context.Watch(fitActor);
        var unresolved = state.Unresolved
            .Select(c => new ApplyControl(c.OpId, c.Op, runs.FirstOrDefault(r => r.RunId == c.NewRunId)))
            .ToList();
        Context.System.EventStream.Publish(new FitDefined(new FitManifest(prepared.Definition, runs)));
        fitActor.Tell(new RunFit(runs, unresolved, prepared.Definition.Pruning, resumeCancelled, rebuilt, fresh, prepared.Definition.Pbt));
        Become(Fitting);
    }

    /// <summary>Asks the fit about the next operation in line, unless one is being checked.</summary>
    private void NextControl()
    {
        if (checking || fitActor is null || !controlQueue.TryPeek(out var next)) return;
        checking = true;
        fitActor.Tell(new CheckControl(state.NextOpId, next.Request.Op, state.NextRunId));
    }

    private void Checked(ControlChecked verdict)
    {
        var (_, from) = controlQueue.Dequeue();
        if (verdict.Refusal is { } refusal)
        {
            Reject(verdict.Op, from, refusal, () =>
            {
                checking = false;
                NextControl();
            });
            return;
        }
        var requested = new ControlRequested(verdict.OpId, DateTime.UtcNow, verdict.Op, fitId, verdict.NewRun);
        Persist(requested, e =>
        {
            Logged(e);
            controlRequesters[verdict.OpId] = from;
            fitActor?.Tell(new ApplyControl(verdict.OpId, verdict.Op, verdict.NewRun));
            checking = false;
            NextControl();
        });
    }

    /// <summary>Journals a refused operation with its reason and answers it.</summary>
    private void Reject(ControlOp op, IActorRef from, string reason, Action? then = null)
    {
        var opId = state.NextOpId;
        var now = DateTime.UtcNow;
        PersistAll(new IExperimentEvent[]
        {
            new ControlRequested(opId, now, op, state.Unfinished?.Definition.FitId ?? state.Fits.Count, null),
            new ControlResolved(opId, now, ControlStatus.Rejected, reason),
        }, e => Logged(e));
        DeferAsync(opId, _ =>
        {
            from.Tell(new ControlOutcome(opId, op, ControlStatus.Rejected, reason));
            then?.Invoke();
        });
    }

    /// <summary>The first word on an operation answers its requester; its outcome, once it took effect or was dropped, is journaled.</summary>
    private void Progress(ControlProgress progress)
    {
        var outcome = progress.Outcome;
        if (controlRequesters.Remove(outcome.OpId, out var requester)) requester.Tell(outcome);
        if (outcome.Status == ControlStatus.Pending) return;
        Persist(new ControlResolved(outcome.OpId, DateTime.UtcNow, outcome.Status, outcome.Message), e => Logged(e));
    }

    /// <summary>Applies a journaled IC-log event and publishes the operation's record as it now stands.</summary>
    private void Logged(IExperimentEvent e)
    {
        state = state.Apply(e);
        var opId = e switch
        {
            ControlRequested r => r.OpId,
            ControlResolved r => r.OpId,
            _ => 0,
        };
        if (state.Controls.Find(c => c.OpId == opId) is { } record) Context.System.EventStream.Publish(record);
    }

    private void Finish(FitCompleted? done)
    {
        checking = false;
        while (controlQueue.TryDequeue(out var waiting))
            Reject(waiting.Request.Op, waiting.From, $"the fit of experiment '{name}' ended before the operation could be checked");
        services?.Dispose();
        services = null;
        fitActor = null;
        if (done is not null) requester?.Tell(done);
        requester = null;
        Become(Idle);
    }

    private void End()
    {
        var from = Sender;
        if (state.Ended)
        {
            from.Tell(new ExperimentClosed());
            return;
        }
        Persist(new ExperimentEnded(DateTime.UtcNow), e =>
        {
            state = state.Apply(e);
            from.Tell(new ExperimentClosed());
        });
    }
}
