using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;

namespace RapidFire.Actors.Tests;

/// <summary>The IC commands and events of a run's pure state: stop, resume, delete, warm start, and the chunk metrics pruning reads.</summary>
public class RunControlStateTests
{
    private static readonly Config Cfg = Config.FromJson("""{"hidden":8,"epochs":3,"batch_size":16,"optimizer":{"name":"Adam","args":{"lr":0.01}}}""");
    private static readonly Config CloneCfg = Config.FromJson("""{"hidden":8,"epochs":5,"batch_size":16,"optimizer":{"name":"Adam","args":{"lr":0.002}}}""");
    private static readonly IReadOnlyDictionary<string, double> Metrics = new Dictionary<string, double> { ["loss"] = 0.5 };
    private static readonly RunFailure Boom = new("RowPrep", "boom", "train", 1, 1, 7);

    private static RunState Run(RunState state, params IRunCommand[] commands) => Fold(RunSnapshot.Of(state), commands).Run;

    /// <summary>The run's state with its epoch's records, as its actor folds them, after <paramref name="commands"/>.</summary>
    private static RunSnapshot Fold(RunSnapshot snapshot, params IRunCommand[] commands)
    {
        foreach (var command in commands)
            foreach (var e in snapshot.Run.Decide(command))
                snapshot = snapshot.Apply(e);
        return snapshot;
    }

    private static MinibatchRecord Record(int runId, Mode mode, int epoch, int chunk, int step, int examples, double? loss,
        (long Correct, long Count)? top1 = null, IReadOnlyDictionary<string, double>? numbers = null) =>
        new(runId, mode, epoch, chunk, step, examples, loss,
            top1 is { } t ? new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(t.Correct, t.Count) } : new Dictionary<string, NamedCount>(),
            numbers is null ? MetricValues.Empty : new MetricValues(numbers, new Dictionary<string, IReadOnlyList<object>>()));

    private static RunState Started() => Run(new RunState(1, Cfg), new StartRun(2, HasValidation: true));

    /// <summary>One chunk into the run: epoch 1 of 3, chunk 2 of 2 next.</summary>
    private static RunState OneChunkIn() => Run(Started(), FirstChunk);

    private static readonly ChunkTrained FirstChunk =
        new(RunTask.Train(1, 0, 0), 0.9, [Record(1, Mode.Train, 0, 0, 0, 16, 0.9)], new CheckpointRef(1, 0, 0));

    private static RunState Stopped() => Run(OneChunkIn(), new StopRun(EndReason.User));

    private static RunState Failed() => Run(OneChunkIn(), new FailRun(Boom));

    private static RunState Deleted() => Run(OneChunkIn(), new DeleteRun());

    private static RunState Completed()
    {
        var run = Run(new RunState(1, Cfg.With("epochs", 1L)), new StartRun(1, HasValidation: false));
        return Run(run, new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null), new CloseEpochMetrics(Mode.Train, 0, Metrics, false));
    }

    /// <summary>A run in its second epoch with a chunk of it trained and validation behind it: every field a warm clone copies is set.</summary>
    private static RunState SecondEpoch() => SecondEpochWithRecords().Run;

    private static RunSnapshot SecondEpochWithRecords()
    {
        var run = Fold(RunSnapshot.Of(Started()),
            new ChunkTrained(RunTask.Train(1, 0, 0), 0.9, [Record(1, Mode.Train, 0, 0, 0, 16, 0.9)], new CheckpointRef(1, 0, 0)),
            new ChunkTrained(RunTask.Train(1, 0, 1), 0.8, [Record(1, Mode.Train, 0, 1, 1, 16, 0.8)], new CheckpointRef(1, 0, 1)),
            new ValidationFinished(RunTask.Validate(1, 0), [Record(1, Mode.Validation, 0, 0, 0, 8, 0.85)]),
            new CloseEpochMetrics(Mode.Train, 0, new Dictionary<string, double> { ["loss"] = 0.85 }, false),
            new CloseEpochMetrics(Mode.Validation, 0, new Dictionary<string, double> { ["loss"] = 0.87 }, false));
        Assert.Equal(1, run.Run.EpochsDone);
        return Fold(run, new ChunkTrained(RunTask.Train(1, 1, 0), 0.7,
            [Record(1, Mode.Train, 1, 0, 0, 10, 0.75), Record(1, Mode.Train, 1, 0, 1, 6, 0.65)], new CheckpointRef(1, 1, 0)));
    }

    // ---- stop ----

    [Fact]
    public void A_users_stop_of_an_ongoing_run_ends_it_as_stopped_by_the_user_keeping_its_progress()
    {
        var run = OneChunkIn();
        var e = Assert.Single(run.Decide(new StopRun(EndReason.User)));
        Assert.Equal(new RunEnded(RunStatus.Stopped, EndReason.User, null), e);

        var stopped = run.Apply(e);
        Assert.Equal((RunStatus.Stopped, "user"), (stopped.Status, stopped.EndedBy));
        Assert.True(stopped.IsEnded);
        Assert.Null(stopped.NextTask);
        Assert.Equal((0, 1, new CheckpointRef(1, 0, 0)), (stopped.EpochsDone, stopped.ChunksDone, stopped.LastCheckpoint));
    }

    [Fact]
    public void A_stop_of_a_run_that_has_ended_changes_nothing()
    {
        Assert.All(new[] { Stopped(), Failed(), Deleted(), Completed() }, run => Assert.Empty(run.Decide(new StopRun(EndReason.User))));
    }

    // ---- resume ----

    [Fact]
    public void A_resumed_run_is_ongoing_again_and_asks_for_the_chunk_after_the_one_it_stopped_at()
    {
        var stopped = Stopped();
        var e = Assert.Single(stopped.Decide(new ResumeRun()));
        Assert.IsType<RunResumed>(e);

        var resumed = stopped.Apply(e);
        Assert.Equal(RunStatus.Ongoing, resumed.Status);
        Assert.Null(resumed.EndedBy);
        Assert.True(resumed.ResumedByUser);
        Assert.Equal(RunTask.Train(1, 0, 1), resumed.NextTask);
        Assert.Equal((0, 1, 0.9, new CheckpointRef(1, 0, 0)), (resumed.EpochsDone, resumed.ChunksDone, resumed.LastTrainLoss, resumed.LastCheckpoint));
        var records = Fold(RunSnapshot.Of(Started()), FirstChunk, new StopRun(EndReason.User)).Records;
        Assert.Single(records.TrainRecords);
        Assert.Same(records, records.Apply(e)); // the epoch's records stay
        Assert.Equal(stopped.ChunkMetrics, resumed.ChunkMetrics);
    }

    [Fact]
    public void A_run_stopped_by_a_pruning_rule_is_resumed_like_any_stopped_run()
    {
        var pruned = Run(OneChunkIn(), new StopRun("sha"));
        Assert.Equal("sha", pruned.EndedBy);
        var resumed = Run(pruned, new ResumeRun());
        Assert.Equal((RunStatus.Ongoing, true), (resumed.Status, resumed.ResumedByUser));
    }

    [Fact]
    public void A_resumed_run_trains_on_to_completion()
    {
        var run = Run(Stopped(), new ResumeRun(), new ChunkTrained(RunTask.Train(1, 0, 1), 0.8, [], null),
            new ValidationFinished(RunTask.Validate(1, 0), []), new CloseEpochMetrics(Mode.Train, 0, Metrics, false),
            new CloseEpochMetrics(Mode.Validation, 0, Metrics, Converged: true));
        Assert.Equal((RunStatus.Completed, EndReason.Converged, 1), (run.Status, run.EndedBy, run.EpochsDone));
        Assert.True(run.ResumedByUser);
    }

    [Fact]
    public void A_resume_of_a_run_that_is_not_stopped_changes_nothing()
    {
        Assert.All(new[] { new RunState(1, Cfg), OneChunkIn(), Failed(), Deleted(), Completed() },
            run => Assert.Empty(run.Decide(new ResumeRun())));
    }

    // ---- delete ----

    [Fact]
    public void A_delete_ends_a_new_ongoing_or_stopped_run_as_deleted_by_the_user()
    {
        Assert.All(new[] { new RunState(1, Cfg), OneChunkIn(), Stopped() }, run =>
        {
            var e = Assert.Single(run.Decide(new DeleteRun()));
            Assert.Equal(new RunEnded(RunStatus.Deleted, EndReason.User, null), e);
            var deleted = run.Apply(e);
            Assert.Equal((RunStatus.Deleted, "user"), (deleted.Status, deleted.EndedBy));
            Assert.True(deleted.IsEnded);
            Assert.Null(deleted.NextTask);
        });
    }

    [Fact]
    public void A_deleted_failed_run_keeps_its_failure()
    {
        var e = Assert.Single(Failed().Decide(new DeleteRun()));
        Assert.Equal(new RunEnded(RunStatus.Deleted, EndReason.User, Boom), e);
        var deleted = Failed().Apply(e);
        Assert.Equal(RunStatus.Deleted, deleted.Status);
        Assert.Equal(Boom, deleted.Failure);
    }

    [Fact]
    public void A_delete_of_a_completed_or_deleted_run_changes_nothing()
    {
        Assert.Empty(Completed().Decide(new DeleteRun()));
        Assert.Empty(Deleted().Decide(new DeleteRun()));
    }

    // ---- warm start ----

    [Fact]
    public void A_warm_start_of_a_new_run_takes_the_state_it_is_given()
    {
        var given = SecondEpoch().WarmCloneAs(5, CloneCfg, new CheckpointRef(5, 1, 0));
        var fresh = new RunState(5, CloneCfg);

        var records = new EpochRecords([Record(5, Mode.Train, 1, 0, 0, 16, 0.9)], []);

        var e = Assert.Single(fresh.Decide(new WarmStart(1, given, records)));
        Assert.Equal(new RunWarmStarted(1, new RunSnapshot(given, records)), e);
        Assert.Same(given, fresh.Apply(e));
        Assert.Same(records, EpochRecords.Empty.Apply(e));
    }

    [Fact]
    public void A_warm_start_of_a_run_that_has_started_changes_nothing()
    {
        var given = SecondEpoch().WarmCloneAs(5, CloneCfg, new CheckpointRef(5, 1, 0));
        Assert.Empty(Run(new RunState(5, CloneCfg), new StartRun(2, true)).Decide(new WarmStart(1, given)));
        Assert.Empty(Run(new RunState(5, CloneCfg), new WarmStart(1, given)).Decide(new WarmStart(1, given)));
    }

    [Fact]
    public void A_warm_clone_takes_the_parents_progress_and_histories_under_its_own_id_knobs_and_checkpoint()
    {
        var parent = Run(SecondEpoch(), new StopRun(EndReason.User));
        var key = new CheckpointRef(5, 1, 0);

        var clone = parent.WarmCloneAs(5, CloneCfg, key);

        Assert.Equal((5, CloneCfg, RunStatus.Ongoing), (clone.RunId, clone.Config, clone.Status));
        Assert.Null(clone.EndedBy);
        Assert.Null(clone.Failure);
        Assert.False(clone.ResumedByUser);
        Assert.Equal(key, clone.LastCheckpoint);
        Assert.Equal(5, clone.MaxEpochs);
        Assert.Equal((2, true, 1, 1, 0.7), (clone.ChunksPerEpoch, clone.HasValidation, clone.EpochsDone, clone.ChunksDone, clone.LastTrainLoss));
        Assert.Equal((parent.ValidationDone, parent.TrainClosed, parent.ValidationClosed),
            (clone.ValidationDone, clone.TrainClosed, clone.ValidationClosed));
        Assert.Equal(parent.TrainHistory, clone.TrainHistory);
        Assert.Equal(parent.ValidationHistory, clone.ValidationHistory);
        Assert.Equal(parent.ChunkMetrics, clone.ChunkMetrics);
        Assert.Equal(3, clone.ChunkMetrics.Count);
        Assert.Equal(RunTask.Train(5, 1, 1), clone.NextTask);
    }

    [Fact]
    public void A_warm_clone_retags_the_current_epochs_records_with_its_id_and_leaves_the_parents_alone()
    {
        var parent = SecondEpochWithRecords();
        var clone = parent.Run.WarmCloneAs(5, CloneCfg, null);
        var records = parent.Records.CloneAs(5, clone, EpochRecords.Empty);

        Assert.Equal(2, records.TrainRecords.Count);
        Assert.All(records.TrainRecords, r => Assert.Equal(5, r.RunId));
        Assert.Equal(parent.Records.TrainRecords.Select(r => r with { RunId = 5 }), records.TrainRecords);
        Assert.All(parent.Records.TrainRecords, r => Assert.Equal(1, r.RunId));
        Assert.Null(clone.LastCheckpoint);
    }

    [Fact]
    public void A_warm_clone_asked_for_as_its_parents_epoch_ended_takes_that_epochs_records_and_none_of_a_later_chunk()
    {
        var atEpochEnd = Fold(RunSnapshot.Of(Started()),
            new ChunkTrained(RunTask.Train(1, 0, 0), 0.9, [Record(1, Mode.Train, 0, 0, 0, 16, 0.9)], null),
            new ChunkTrained(RunTask.Train(1, 0, 1), 0.8, [Record(1, Mode.Train, 0, 1, 1, 16, 0.8)], null));
        var clone = atEpochEnd.Run.WarmCloneAs(5, CloneCfg, null);
        // the parent has closed the epoch and trained on meanwhile: the clone still gets epoch 1's two chunks
        var later = Fold(atEpochEnd,
            new ValidationFinished(RunTask.Validate(1, 0), [Record(1, Mode.Validation, 0, 0, 0, 8, 0.85)]),
            new CloseEpochMetrics(Mode.Train, 0, Metrics, false), new CloseEpochMetrics(Mode.Validation, 0, Metrics, false),
            new ChunkTrained(RunTask.Train(1, 1, 0), 0.7, [Record(1, Mode.Train, 1, 0, 0, 16, 0.7)], null));
        Assert.Equal(1, later.Run.EpochsDone);

        var records = later.Records.CloneAs(5, clone, atEpochEnd.Records);

        Assert.Equal([(0, 0), (0, 1)], records.TrainRecords.Select(r => (r.Epoch, r.Chunk)));
        Assert.Empty(records.ValidationRecords); // the clone validates its epoch itself
        Assert.Equal(atEpochEnd.Records.CloneAs(5, clone, EpochRecords.Empty).TrainRecords, records.TrainRecords);
    }

    [Fact]
    public void A_warm_clone_retags_the_validation_records_of_its_current_epoch()
    {
        var parent = Fold(RunSnapshot.Of(Started()),
            new ChunkTrained(RunTask.Train(1, 0, 0), 0.9, [], null), new ChunkTrained(RunTask.Train(1, 0, 1), 0.8, [], null),
            new ValidationFinished(RunTask.Validate(1, 0), [Record(1, Mode.Validation, 0, 0, 0, 8, 0.85)]));
        var clone = parent.Run.WarmCloneAs(5, CloneCfg, null);
        Assert.Equal(5, Assert.Single(parent.Records.CloneAs(5, clone, EpochRecords.Empty).ValidationRecords).RunId);
        Assert.True(clone.ValidationDone);
        Assert.Null(clone.NextTask); // it waits for the epoch's metrics, as its parent did
    }

    // ---- chunk metrics ----

    [Fact]
    public void A_trained_chunk_adds_the_examples_weighted_mean_of_each_minibatch_number_to_the_chunk_metrics()
    {
        var records = new[]
        {
            Record(1, Mode.Train, 0, 0, 0, 10, 1.0, top1: (5, 10), numbers: new Dictionary<string, double> { ["f1"] = 0.2 }),
            Record(1, Mode.Train, 0, 0, 1, 30, 2.0, top1: (30, 30), numbers: new Dictionary<string, double> { ["f1"] = 0.6 }),
        };
        var run = Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1.75, records, null));

        var chunk = Assert.Single(run.ChunkMetrics);
        Assert.Equal(["f1", "loss", "top1_accuracy"], chunk.Keys.Order());
        Assert.Equal((10 * 1.0 + 30 * 2.0) / 40, chunk["loss"], 12);
        Assert.Equal((10 * 0.5 + 30 * 1.0) / 40, chunk["top1_accuracy"], 12);
        Assert.Equal((10 * 0.2 + 30 * 0.6) / 40, chunk["f1"], 12);
    }

    [Fact]
    public void A_number_only_some_minibatches_have_is_averaged_over_those_minibatches()
    {
        var records = new[] { Record(1, Mode.Train, 0, 0, 0, 10, 1.0), Record(1, Mode.Train, 0, 0, 1, 30, null) };
        var run = Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1.0, records, null));
        Assert.Equal(1.0, Assert.Single(run.ChunkMetrics)["loss"], 12);
    }

    [Fact]
    public void Chunk_metrics_keep_one_entry_per_chunk_over_every_epoch()
    {
        var run = SecondEpoch();
        Assert.Equal(3, run.ChunkMetrics.Count);
        Assert.Equal(0.9, run.ChunkMetrics[0]["loss"], 12);
        Assert.Equal(0.8, run.ChunkMetrics[1]["loss"], 12);
        Assert.Equal((10 * 0.75 + 6 * 0.65) / 16, run.ChunkMetrics[2]["loss"], 12);
        Assert.Empty(Assert.Single(Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null)).ChunkMetrics));
    }
}
