using Akka.Actor;
using Akka.Event;
using Akka.Pattern;
using Akka.Persistence;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Persistence;
using RapidFire.Actors.Storage;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Training;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

/// <summary>
/// One run (one leaf config), event-sourced: it journals what happens to it (<see cref="IRunEvent"/>), recovers its
/// <see cref="RunState"/> from the journal after a restart or a crash, asks the MetricsActor to close each epoch's
/// metrics, and tells the fit every change.
/// </summary>
/// <remarks>
/// All decisions are <see cref="RunState.Decide"/>'s; this actor persists the events, applies them (to the state and to
/// the current epoch's <see cref="EpochRecords"/>, which it keeps beside the state and alone sends on: to the
/// MetricsActor to close the epoch, to a warm clone through <see cref="WarmStartThrough"/>) and carries out
/// their effects: closing the train metrics after an epoch's last chunk, closing the validation metrics (and asking
/// <c>HasConverged</c>) after its validation pass. After a recovery it redoes the effects whose replies were lost.
/// A snapshot of the state is taken every <c>snapshot-every</c> events. A failed journal write stops the actor; its
/// <see cref="BackoffSupervisor"/> (see <see cref="SupervisedProps"/>) starts it again and it recovers.
/// <para>A trained chunk that carries a checkpoint is journaled only once the checkpoint is durable: the actor writes
/// it (with the run's state after the chunk in its header), and only the waiting moves off the device: the run's next
/// task is scheduled from the state decided so far (<see cref="RunAhead"/>) while the journal, or a checkpoint write in
/// this process, goes on. During such a write, that task's outcome, the epoch's metrics and the chunks after it without
/// a checkpoint are decided and wait behind the write, to be journaled after the chunk in order; other commands are
/// stashed. A write that fails takes back what was decided behind it. On recovery the state must match its newest checkpoint; when the journal is ahead of it
/// (checkpoints every epoch) or the file is corrupt, the run goes back to the newest valid checkpoint
/// (<see cref="RestoredFromCheckpoint"/>) and trains the lost chunks again.</para>
/// <code>
/// Recovering --RecoveryCompleted--> Running --ChunkTrained with checkpoint--> WritingCheckpoint --durable--> Running
/// </code>
/// </remarks>
public sealed class RunActor : ReceivePersistentActor
{
    private sealed record CheckpointDurable(CheckpointRef Key, int? OpId);

    private sealed record CheckpointFailed(CheckpointRef Key, Exception Cause, int? OpId, long Bytes = 0);

    /// <summary>The node that held a chunk's captured state died (or never answered): the chunk is trained again.</summary>
    private sealed record CheckpointLost(CheckpointRef Key, string Reason);

    private readonly IActorRef fit;
    private readonly IActorRef metrics;
    private readonly TrainingServices services;
    private readonly CheckpointRetention retention;
    private readonly Start start;
    private readonly ILoggingAdapter log = Context.GetLogger();
    /// <summary>The state after every event decided: journaled, or waiting behind the checkpoint being written.</summary>
    private RunState state;
    /// <summary>The state the journal holds.</summary>
    private RunState journaled;
    /// <summary>The current epoch's records, as decided (beside <see cref="state"/>) and as journaled (beside <see cref="journaled"/>).</summary>
    private EpochRecords records = EpochRecords.Empty, journaledRecords = EpochRecords.Empty;
    /// <summary>The decided records of the epoch before the current one: a warm clone asked for just as the epoch ended takes them.</summary>
    private EpochRecords closedRecords = EpochRecords.Empty;
    private CheckpointRef? writing;
    private IActorRef? writingWith;
    /// <summary>
    /// The events of the checkpoint being written, then those decided while it is written, one list per command: each
    /// is journaled as its own write, and the fit (and the progress it shows) hears the state after each.
    /// </summary>
    private readonly List<IReadOnlyList<IRunEvent>> waiting = [];

    /// <summary>
    /// Props of the actor of run <paramref name="runId"/>, journaling as <c>{prefix}run-{runId}</c> (the prefix of the
    /// settings), started as <paramref name="start"/> says (by default, from its journal alone).
    /// </summary>
    public static Props Props(int runId, Config config, IActorRef fit, IActorRef metrics, TrainingServices services, Start? start = null) =>
        Akka.Actor.Props.Create(() => new RunActor(runId, config, fit, metrics, services, start ?? new Start()));

    /// <summary>The run's actor under a supervisor that starts it again (with backoff) when a journal write fails.</summary>
    public static Props SupervisedProps(int runId, Config config, IActorRef fit, IActorRef metrics, TrainingServices services, Start? start = null) =>
        BackoffSupervisor.Props(Props(runId, config, fit, metrics, services, start), "journaled",
            TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(2), 0.2);

    /// <summary>
    /// How a run's actor starts besides recovering its journal: with <paramref name="ResumeCancelled"/> (a cancelled
    /// fit resumed), a run the cancel stopped goes on; with <paramref name="Rebuilt"/> (its journal was lost), a run
    /// whose journal is empty starts from that state, its newest checkpoint's. A <paramref name="Fresh"/> run (new in
    /// this fit) replays its journal without asking the snapshot store first: it has no snapshot, and the journal holds
    /// every event (snapshots only shorten a replay), so even a restart after a failed write recovers the same state.
    /// </summary>
    public sealed record Start(bool ResumeCancelled = false, RunSnapshot? Rebuilt = null, bool Fresh = false);

    /// <summary>Creates the actor.</summary>
    public RunActor(int runId, Config config, IActorRef fit, IActorRef metrics, TrainingServices services, Start start)
    {
        this.start = start;
        this.fit = fit;
        this.metrics = metrics;
        this.services = services;
        retention = new CheckpointRetention(services.Settings.KeepCheckpoints);
        PersistenceId = $"{services.Settings.JournalIdPrefix}run-{runId}";
        state = journaled = new RunState(runId, config);

        Recover<SnapshotOffer>(offer => Reset((RunSnapshot)offer.Snapshot));
        Recover<IRunEvent>(e => Reset(new RunSnapshot(journaled, journaledRecords).Apply(e)));
        Recover<RecoveryCompleted>(_ => AfterRecovery());
        Running();
    }

    private void Running()
    {
        Command<IRunCommand>(command => Handle(command));
        Command<Controlled>(controlled => Handle(controlled.Command, controlled.OpId));
        Command<RetryFromCheckpoint>(Retry);
        Command<WarmStartThrough>(LendRecords);
        Command<SaveSnapshotSuccess>(saved => DeleteSnapshots(new SnapshotSelectionCriteria(saved.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(failed => log.Warning("run {0}: snapshot not saved: {1}", state.RunId, failed.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
    }

    /// <summary>
    /// A chunk's checkpoint is being written: it is journaled once durable, with what was decided behind it (the tasks'
    /// outcomes and the epoch's metrics); everything else waits.
    /// </summary>
    private void WritingCheckpoint()
    {
        Command<CheckpointDurable>(durable =>
        {
            if (durable.Key != writing) return;
            var decided = waiting.ToList();
            WriteDone();
            for (var i = 0; i < decided.Count; i++) PersistDecided(decided[i], i == 0 ? durable.OpId : null, superseded: i < decided.Count - 1);
        });
        Command<Terminated>(gone =>
        {
            // The node holding the captured state died before it wrote it: the chunk is lost, not the run.
            if (gone.ActorRef.Equals(writingWith)) Self.Tell(new CheckpointLost(writing!, "its node left the cluster"));
        });
        Command<CheckpointLost>(lost =>
        {
            if (lost.Key != writing) return;
            WriteDone(undo: true);
            Warn($"the state after {lost.Key} was lost with its node ({lost.Reason}); the chunk is trained again");
            fit.Tell(new RunUpdated(journaled, Recovered: true)); // its task is scheduled again, from the last checkpoint
        });
        Command<CheckpointFailed>(failed =>
        {
            if (failed.Key != writing) return;
            WriteDone(undo: true);
            if (OutOfSpace.Is(failed.Cause))
            {
                // The machine's fault, not the run's: nothing of the chunk is journaled, and the fit is interrupted. An
                // operation waiting on it stays pending in the experiment's journal; the resume carries it out.
                var where = services.Checkpoints?.Describe(failed.Key) ?? failed.Key.ToString();
                fit.Tell(new FitProtocol.StorageFull(state.RunId,
                    $"run {state.RunId}'s checkpoint {where} ({OutOfSpace.Megabytes(failed.Bytes)}) could not be written: {failed.Cause.Message}",
                    Path.GetDirectoryName(where), failed.Bytes));
                return;
            }
            Handle(new FailRun(new RunFailure("checkpoint", $"{services.Checkpoints?.Describe(failed.Key)}: {failed.Cause.Message}")));
            if (failed.OpId is { } op) fit.Tell(new ControlCarriedOut(op, true, state));
        });
        Command<IRunCommand>(command =>
        {
            if (NeedsNothingDurable(command)) DecideBehind(command);
            else Stash.Stash();
        });
        CommandAny(_ => Stash.Stash());
    }

    /// <summary>
    /// Decides a command that needs nothing durable while the checkpoint is written: its events wait behind the write,
    /// and the fit hears the state decided so far when the write is this process's (its next task can start).
    /// </summary>
    private void DecideBehind(IRunCommand command)
    {
        var events = state.Decide(command);
        if (events.Count == 0) return;
        Decided(events);
        waiting.Add(events);
        TellAheadOfWrite();
    }

    /// <summary>
    /// Tells the fit the state decided so far when the checkpoint being written is of a chunk trained in this process:
    /// the state rests here, so the run's next task can start on it before the chunk is durable.
    /// </summary>
    private void TellAheadOfWrite()
    {
        if (writingWith is null && waiting[0][0] is ChunkCompleted) fit.Tell(new RunAhead(state));
    }

    /// <inheritdoc />
    public override string PersistenceId { get; }

    /// <inheritdoc />
    public override Recovery Recovery => start.Fresh ? new Recovery(SnapshotSelectionCriteria.None) : base.Recovery;

    /// <summary>Decides, then writes a checkpoint the events carry (durably, first) and journals them; an IC operation's command is answered after.</summary>
    private void Handle(IRunCommand command, int? opId = null)
    {
        var events = state.Decide(command);
        if (command is ResumeRun && events.Count > 0 && !services.Models.IsResting(state.RunId) && Restore() is { } restored)
            // Stopped before a crash: its trained state is only in the checkpoint store, which may be behind the journal
            // (checkpoints every epoch). Like a recovered run it goes back to the newest valid checkpoint, then resumes.
            events = [restored, .. events];
        var carried = command switch
        {
            ChunkTrained trained => trained.Checkpoint,
            WarmStart warm => warm.State.LastCheckpoint,
            _ => null,
        };
        if (carried is { } stale && (events.Count == 0 || services.Checkpoints is null))
            services.PendingCheckpoints.Discard(stale); // not journaled: its bytes are not needed
        if (events.Count == 0)
        {
            if (opId is { } op) fit.Tell(new ControlCarriedOut(op, false, state));
            return;
        }
        if (carried is { } checkpoint && services.Checkpoints is { } store)
            WriteThenCommit(store, checkpoint, (command as ChunkTrained)?.Holder, events, opId);
        else
            Commit(events, opId, ahead: NeedsNothingDurable(command));
    }

    /// <summary>
    /// Whether the run's next task may start on what <paramref name="command"/> decided before it is journaled: a task's
    /// outcome or an epoch's metrics, which a crash only makes the run redo, unlike an IC operation or a run's end.
    /// </summary>
    private static bool NeedsNothingDurable(IRunCommand command) => command is ValidationFinished or CloseEpochMetrics or ChunkTrained { Checkpoint: null };

    /// <summary>
    /// Writes the checkpoint the events carry, durably, then journals them. The captured state waits in this process
    /// (<see cref="TrainingServices.PendingCheckpoints"/>) or, trained on another node, with its
    /// <paramref name="holder"/>, which writes it to the shared store with the header computed here.
    /// </summary>
    private void WriteThenCommit(ICheckpointStore store, CheckpointRef key, IActorRef? holder, IReadOnlyList<IRunEvent> events, int? opId)
    {
        var local = services.PendingCheckpoints.TryTake(key, out var payload);
        if (!local && holder is null)
        {
            Handle(new FailRun(new RunFailure("checkpoint", $"the captured state of {key} is missing")));
            if (opId is { } op) fit.Tell(new ControlCarriedOut(op, true, state));
            return;
        }
        var snapshot = events.Aggregate(new RunSnapshot(state, records), (s, e) => s.Apply(e));
        var after = snapshot.Run;
        var steps = CheckpointHeader.SchedulerStepsAt(key, after.ChunksPerEpoch, after.Config);
        var header = new CheckpointHeader(state.RunId, key.Epoch, key.Chunk, services.SeedOf(state.Config), steps,
            DateTimeOffset.UtcNow, JournalSerializer.ToJson(snapshot));
        var write = local ? null : Cluster.WorkerProtocol.WriteCheckpoint.Of(key, header, after.ChunksPerEpoch);
        // Base64 in the message's JSON makes the gzipped state 4/3 its size; half the frame leaves room for the header.
        if (write is not null && FrameSize() is var frame && write.State.Length > frame / 2)
        {
            // Akka.Remote would drop the message: fail the run, saying what to raise, rather than retrying forever.
            Handle(new FailRun(new RunFailure("checkpoint",
                $"run {state.RunId}'s state after {key} is {write.State.Length:N0} bytes gzipped, too close to akka.remote.dot-netty.tcp.maximum-frame-size " +
                $"({frame:N0} bytes) to reach the node holding its checkpoint; raise it, or use more chunks per epoch")));
            if (opId is { } failedOp) fit.Tell(new ControlCarriedOut(failedOp, true, state));
            return;
        }
        var written = local
            ? store.SaveAndPruneAsync(key, header, payload!, after.ChunksPerEpoch, retention).ContinueWith(t => t.IsCompletedSuccessfully
                ? (object)new CheckpointDurable(key, opId)
                : new CheckpointFailed(key, t.Exception?.GetBaseException() ?? new TaskCanceledException(), opId, payload!.Length), TaskScheduler.Default)
            : holder!.Ask(write!, RemoteWriteTimeout).ContinueWith(t =>
                (t.IsCompletedSuccessfully ? t.Result : null) switch
            {
                null => new CheckpointLost(key, $"the node holding it did not answer ({t.Exception?.GetBaseException().Message})"),
                Cluster.WorkerProtocol.CheckpointWritten => new CheckpointDurable(key, opId),
                Cluster.WorkerProtocol.CheckpointNotWritten no => (object)new CheckpointFailed(key, new IOException(no.Reason), opId, write!.State.Length),
                var other => new CheckpointLost(key, $"unexpected answer {other}"),
            }, TaskScheduler.Default);
        written.PipeTo(Self);
        writing = key;
        if (!local)
        {
            writingWith = holder;
            Context.Watch(holder);
        }
        Decided(events);
        waiting.Add(events);
        BecomeStacked(WritingCheckpoint);
        TellAheadOfWrite();
    }

    /// <summary>
    /// Leaves the writing of <see cref="writing"/>: the answers of an earlier write that arrive later are ignored. With
    /// <paramref name="undo"/> (the write failed), what was decided behind it is taken back: the run stands where its
    /// journal does, and answers to what it asked meanwhile (epoch metrics) find nothing to apply to.
    /// </summary>
    private void WriteDone(bool undo = false)
    {
        if (writingWith is not null) Context.Unwatch(writingWith);
        writingWith = null;
        writing = null;
        waiting.Clear();
        if (undo) (state, records) = (journaled, journaledRecords);
        UnbecomeStacked();
        Stash.UnstashAll();
    }

    /// <summary>The largest message Akka.Remote carries between nodes (read once; no limit off a remoting node).</summary>
    private long FrameSize() => frameSize ??= Context.System.Settings.Config.HasPath(FrameSizePath)
        ? Context.System.Settings.Config.GetByteSize(FrameSizePath) ?? long.MaxValue
        : long.MaxValue;

    private const string FrameSizePath = "akka.remote.dot-netty.tcp.maximum-frame-size";
    private long? frameSize;

    /// <summary>How long a run waits for another node to write its checkpoint before it counts the chunk as lost.</summary>
    private static readonly TimeSpan RemoteWriteTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Takes decided events and journals them; <paramref name="ahead"/>: the fit hears the decided state at once, so that
    /// the run's next task starts while the journal writes (the journaled state follows).
    /// </summary>
    private void Commit(IReadOnlyList<IRunEvent> events, int? opId = null, bool ahead = false)
    {
        Decided(events);
        if (ahead) fit.Tell(new RunAhead(state));
        PersistDecided(events, opId);
    }

    /// <summary>Takes decided events into <see cref="state"/> and asks for what they lead to (an epoch's metrics).</summary>
    private void Decided(IReadOnlyList<IRunEvent> events)
    {
        foreach (var e in events)
        {
            if (e is EpochCompleted) closedRecords = records;
            state = state.Apply(e);
            records = records.Apply(e);
            switch (e)
            {
                case ChunkCompleted when state.ChunksDone == state.ChunksPerEpoch:
                    CloseTrainMetrics();
                    break;
                case ValidationCompleted:
                    CloseValidationMetrics();
                    break;
                case RunResumed or RunWarmStarted:
                    CloseWhatIsPending();
                    break;
            }
        }
    }

    /// <summary>
    /// Journals decided events; once the last is written the fit hears the journaled state (commands that arrive
    /// meanwhile wait for the write, so nothing decided later can overtake it), <paramref name="superseded"/> when more
    /// decided before it is still to be journaled after it (the fit keeps the later state it heard).
    /// </summary>
    private void PersistDecided(IReadOnlyList<IRunEvent> events, int? opId, bool superseded = false)
    {
        var left = events.Count;
        PersistAll(events, e =>
        {
            journaled = journaled.Apply(e);
            journaledRecords = journaledRecords.Apply(e);
            Context.System.EventStream.Publish(new RunJournaled(journaled.RunId, e));
            if (e is RunEnded { Status: not RunStatus.Stopped } && services.Checkpoints is { } store)
                // A stopped run may be resumed or warm-cloned: its newest checkpoints stay until it ends for good.
                store.Prune(journaled.RunId, journaled.ChunksPerEpoch, retention, runEnded: true);
            if (LastSequenceNr % services.Settings.SnapshotEvery == 0) SaveSnapshot(new RunSnapshot(journaled, journaledRecords));
            if (--left > 0) return;
            fit.Tell(new RunUpdated(journaled, Superseded: superseded));
            if (opId is { } op) fit.Tell(new ControlCarriedOut(op, true, journaled));
        });
    }

    /// <summary>Journals an event of the run's recovery (it was decided alone, nothing waits behind it), then <paramref name="then"/>.</summary>
    private void JournalRecovery(IRunEvent restored, Action then) =>
        Persist(restored, e =>
        {
            Reset(new RunSnapshot(journaled, journaledRecords).Apply(e));
            Context.System.EventStream.Publish(new RunJournaled(journaled.RunId, e));
            then();
        });

    /// <summary>
    /// Retries a task that failed with a transient native fault: back to the newest valid checkpoint (journaled when the
    /// journal is ahead of it), then reported as recovered, so that the fit schedules the task again on a model
    /// restored from that checkpoint (its device dropped the failed task's model). Training is deterministic, so the
    /// retried chunks are bit-identical to a clean run's.
    /// </summary>
    private void Retry(RetryFromCheckpoint retry)
    {
        if (state.IsEnded || state.NextTask != retry.Task) return; // stopped or moved on meanwhile: nothing to retry
        Warn($"{retry.Failure}; a native fault outside the MLSpec code: retrying {retry.Task} once from the newest checkpoint");
        if (Restore() is { } restored)
            JournalRecovery(restored, Resumed); // the checkpoint's state may wait for epoch metrics closed after it: they are asked again
        else
            Resumed();
    }

    /// <summary>
    /// A recovered run checks that its newest checkpoint holds its state (else goes back to the newest valid one),
    /// redoes what it had asked for and not yet heard back, then reports where it is.
    /// </summary>
    private void AfterRecovery()
    {
        if (state.Status == RunStatus.New && start.Rebuilt is { } rebuilt && rebuilt.Run.ChunksTrained > 0)
        {
            // Its journal was lost: it goes on from its newest checkpoint, whose header holds its state then.
            JournalRecovery(new RestoredFromCheckpoint(rebuilt, $"rebuilt from its checkpoint {rebuilt.Run.LastCheckpoint} after its journal was lost"), Resumed);
            return;
        }
        if (state.Status == RunStatus.New) return; // not started yet: the fit starts it
        if (start.ResumeCancelled && state is { Status: RunStatus.Stopped, EndedBy: EndReason.Cancelled } && state.Decide(new ResumeRun()).Count > 0)
        {
            // The cancelled fit is resumed: the run goes on from where the cancel stopped it (from its newest checkpoint
            // when the journal is ahead of it), as a resume of a stopped run does.
            Handle(new ResumeRun());
            return;
        }
        if (state.Status == RunStatus.Ongoing && Restore() is { } restored)
        {
            JournalRecovery(restored, Resumed);
            return;
        }
        Resumed();
    }

    /// <summary>Sets the decided and the journaled state to <paramref name="snapshot"/> (recovery).</summary>
    private void Reset(RunSnapshot snapshot)
    {
        (state, records) = (journaled, journaledRecords) = (snapshot.Run, snapshot.Records);
    }

    /// <summary>
    /// Sends a warm clone's start on to the clone with the records of this run's epoch so far (up to where the clone
    /// starts), so that the clone closes that epoch's metrics over the same minibatches as this run would.
    /// </summary>
    private void LendRecords(WarmStartThrough through)
    {
        var warm = (WarmStart)through.Start.Command;
        var lent = records.CloneAs(warm.State.RunId, warm.State, closedRecords);
        through.CloneActor.Tell(through.Start with { Command = warm with { Records = lent } }, Sender);
    }

    private void Resumed()
    {
        if (state.Status == RunStatus.Ongoing) CloseWhatIsPending();
        fit.Tell(new RunUpdated(state, Recovered: true));
    }

    /// <summary>
    /// Asks again for the epoch metrics the run waits for: their answer was lost (a crash) or dropped (the run was
    /// stopped while they were being closed) or belongs to the parent (a warm clone).
    /// </summary>
    private void CloseWhatIsPending()
    {
        if (state.ChunksDone == state.ChunksPerEpoch && !state.TrainClosed) CloseTrainMetrics();
        if (state.ValidationDone && !state.ValidationClosed) CloseValidationMetrics();
    }

    /// <summary>
    /// The state to go back to when the newest checkpoint does not hold the journaled state (the journal is ahead of it,
    /// or it is missing or corrupt): the newest valid checkpoint's, or the start. Null when all is consistent.
    /// </summary>
    private RestoredFromCheckpoint? Restore()
    {
        var store = services.Checkpoints;
        var trained = state.ChunksTrained;
        string? problem = null;
        if (state.LastCheckpoint is { } last && Position(last) == trained && store is not null)
        {
            (_, problem) = TryLoad(store, last);
            if (problem is null) return null;
        }
        else if (trained == 0) return null;

        var candidates = store?.List(state.RunId).Where(c => Position(c) <= trained).OrderByDescending(c => c) ?? Enumerable.Empty<CheckpointRef>();
        foreach (var candidate in candidates)
        {
            var (checkpoint, bad) = TryLoad(store!, candidate);
            if (checkpoint is null)
            {
                problem ??= bad;
                continue;
            }
            var restored = JournalSerializer.FromJson<RunSnapshot>(checkpoint.Header.State);
            var reason = $"{problem ?? $"the journal is ahead of the newest checkpoint ({trained} chunks trained)"}; " +
                         $"resuming from {store!.Describe(candidate)} ({Position(candidate)} chunks trained)";
            Warn(reason);
            return new RestoredFromCheckpoint(restored, reason);
        }
        var start = new RunState(state.RunId, state.Config).Apply(new RunStarted(state.ChunksPerEpoch, state.HasValidation));
        var why = $"{problem ?? "no checkpoint holds the journaled state"}; no valid checkpoint is left, so the run starts over";
        Warn(why);
        return new RestoredFromCheckpoint(RunSnapshot.Of(start), why);
    }

    private int Position(CheckpointRef key) => key.Epoch * state.ChunksPerEpoch + key.Chunk + 1;

    /// <summary>The checkpoint, loaded with its hash checked; or what is wrong with it, naming the file.</summary>
    private static (Checkpoint? Checkpoint, string? Problem) TryLoad(ICheckpointStore store, CheckpointRef key)
    {
        try
        {
            return (store.Load(key), null);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException)
        {
            return (null, e.Message.Contains(store.Describe(key), StringComparison.Ordinal) ? e.Message : $"{store.Describe(key)}: {e.Message}");
        }
    }

    private void Warn(string message)
    {
        // One way out: the experiment writes it to experiment.log and the CLI prints it. Through Akka's logger as well,
        // it was printed twice on stdout.
        Context.System.EventStream.Publish(new RunWarning(state.RunId, $"run {state.RunId}: {message}"));
    }

    private void CloseTrainMetrics() =>
        metrics.Tell(new MetricsProtocol.CloseEpoch(state.RunId, state.Config, Mode.Train, state.EpochsDone, records.TrainRecords, state.ValidationHistory));

    private void CloseValidationMetrics() =>
        metrics.Tell(new MetricsProtocol.CloseEpoch(state.RunId, state.Config, Mode.Validation, state.EpochsDone, records.ValidationRecords, state.ValidationHistory));

    /// <inheritdoc />
    /// <remarks>
    /// A journal that is out of space interrupts the fit, once, with no stack trace on the console; the actor stops as
    /// after any failed write, and nothing it had not journaled counts as done.
    /// </remarks>
    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        if (!OutOfSpace.Is(cause))
        {
            base.OnPersistFailure(cause, @event, sequenceNr);
            return;
        }
        var file = JournalConfig.SqliteFileOf(Context.System.Settings.Config);
        fit.Tell(new FitProtocol.StorageFull(state.RunId,
            $"the journal{(file is null ? "" : $" {file}")} could not record run {state.RunId}'s {@event.GetType().Name}: {cause.GetBaseException().Message}",
            file is null ? null : Path.GetDirectoryName(file), 0));
    }

    /// <inheritdoc />
    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // An event the journal refuses (it cannot be serialized) must not be skipped: fail loudly and recover.
        base.OnPersistRejected(cause, @event, sequenceNr);
        throw new InvalidOperationException($"run {state.RunId}: the journal rejected {@event.GetType().Name}: {cause.Message}", cause);
    }
}
