using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Persistence;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Metrics;

namespace RapidFire.Actors.Tests.Persistence;

/// <summary>The journal's schema is a contract with every journal already written: these pin it.</summary>
public class EventSchemaTests
{
    private static readonly Config Cfg = Config.FromJson("""{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16}""");

    [Fact]
    public void Every_journaled_type_has_a_manifest()
    {
        var journaled = typeof(IJournaled).Assembly.GetTypes()
            .Where(t => typeof(IJournaled).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface);
        Assert.All(journaled, t => Assert.Equal(t, EventSchema.TypeOf(EventSchema.ManifestOf(t))));
    }

    [Fact]
    public void A_chunk_completed_event_is_written_as_this_json_and_reads_back_equal()
    {
        var record = new MinibatchRecord(3, Mode.Train, 1, 2, 7, 16, 0.25,
            new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(12, 16) },
            MetricValues.FromParts([new Dictionary<string, object> { ["boxes"] = "a" }]));
        var e = new ChunkCompleted(1, 2, 0.5, [record], new CheckpointRef(3, 1, 2));

        var json = JournalSerializer.ToJson(e);

        Assert.Equal("""{"Epoch":1,"Chunk":2,"MeanLoss":0.5,"Records":[{"RunId":3,"Mode":"Train","Epoch":1,"Chunk":2,"Step":7,"Examples":16,"Loss":0.25,"Named":{"top1_accuracy":{"Correct":12,"Count":16}},"Values":{"Numbers":{},"Objects":{"boxes":["a"]}}}],"Checkpoint":{"RunId":3,"Epoch":1,"Chunk":2}}""", json);
        var back = JournalSerializer.FromJson<ChunkCompleted>(json);
        Assert.Equal(e.Checkpoint, back.Checkpoint);
        Assert.Equal(record.Named["top1_accuracy"], back.Records[0].Named["top1_accuracy"]);
        Assert.Equal(JournalSerializer.ToJson(e), JournalSerializer.ToJson(back));
    }

    [Fact]
    public void Run_and_experiment_events_pin_their_field_names()
    {
        Assert.Equal("""{"ChunksPerEpoch":4,"HasValidation":true}""", JournalSerializer.ToJson(new RunStarted(4, true)));
        Assert.Equal("""{"Status":"Failed","EndedBy":"failure","Failure":{"Method":"RowPrep","Message":"boom","Mode":"train","Epoch":1,"Chunk":2,"RowId":9}}""",
            JournalSerializer.ToJson(new RunEnded(RunStatus.Failed, EndReason.Failure, new RunFailure("RowPrep", "boom", "train", 1, 2, 9))));
        Assert.Equal("""{"Mode":"Validation","Epoch":0,"Metrics":{"loss":0.5},"Converged":true}""",
            JournalSerializer.ToJson(new EpochMetricsRecorded(Mode.Validation, 0, new Dictionary<string, double> { ["loss"] = 0.5 }, true)));
        Assert.Equal("""{"FitId":1,"Runs":[{"RunId":1,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16}}]}""",
            JournalSerializer.ToJson(new RunsAdded(1, [new ExperimentProtocol.RunDefinition(1, Cfg)])));
    }

    [Fact]
    public void A_run_state_snapshot_reads_back_to_an_equal_state()
    {
        var state = RunSnapshot.Of(new RunState(2, Cfg).Apply(new RunStarted(3, true)))
            .Apply(new ChunkCompleted(0, 0, 0.9, [], new CheckpointRef(2, 0, 0)))
            .Apply(new RunEnded(RunStatus.Stopped, EndReason.Cancelled, null));
        var back = JournalSerializer.FromJson<RunSnapshot>(JournalSerializer.ToJson(state));
        Assert.Equal(JournalSerializer.ToJson(state), JournalSerializer.ToJson(back));
        Assert.Equal((RunStatus.Stopped, 1, new CheckpointRef(2, 0, 0)), (back.Run.Status, back.Run.ChunksDone, back.Run.LastCheckpoint));
        Assert.Equal(Cfg, back.Run.Config);
    }

    /// <summary>
    /// A snapshot, a checkpoint header and a restore event as the release before the lean run state wrote them (the
    /// epoch's records among the state's fields): they read into the state and its records, and write back the same.
    /// </summary>
    [Fact]
    public void A_run_state_written_with_its_epochs_records_among_its_fields_reads_into_the_state_and_its_records()
    {
        const string v1 = """{"RunId":2,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16},"Status":"Ongoing","ChunksPerEpoch":3,"HasValidation":true,"EpochsDone":1,"ChunksDone":1,"ValidationDone":false,"TrainClosed":false,"ValidationClosed":false,"Converged":false,"ChunkMetrics":[{"loss":0.5},{"loss":0.4},{"loss":0.3},{"loss":0.25}],"ResumedByUser":false,"LastTrainLoss":0.25,"TrainRecords":[{"RunId":2,"Mode":"Train","Epoch":1,"Chunk":0,"Step":0,"Examples":16,"Loss":0.25,"Named":{"top1_accuracy":{"Correct":12,"Count":16}},"Values":{"Numbers":{},"Objects":{}}}],"ValidationRecords":[],"LastCheckpoint":{"RunId":2,"Epoch":1,"Chunk":0},"TrainHistory":[{"loss":0.4}],"ValidationHistory":[{"loss":0.45}]}""";

        var snapshot = JournalSerializer.FromJson<RunSnapshot>(v1);
        Assert.Equal((2, 1, 1, new CheckpointRef(2, 1, 0)), (snapshot.Run.RunId, snapshot.Run.EpochsDone, snapshot.Run.ChunksDone, snapshot.Run.LastCheckpoint));
        var record = Assert.Single(snapshot.Records.TrainRecords);
        Assert.Equal((1, 0, 0.25, new NamedCount(12, 16)), (record.Epoch, record.Chunk, record.Loss, record.Named["top1_accuracy"]));
        Assert.Empty(snapshot.Records.ValidationRecords);
        Assert.Equal(v1, JournalSerializer.ToJson(snapshot));
        Assert.Equal(typeof(RunSnapshot), EventSchema.TypeOf("run-state.v1"));

        var restored = JournalSerializer.FromJson<RestoredFromCheckpoint>($$"""{"State":{{v1}},"Reason":"test"}""");
        Assert.Same(restored.State.Records, EpochRecords.Empty.Apply(restored));
        Assert.Equal(1, new RunState(2, Cfg).Apply(restored).ChunksDone);
    }

    [Fact]
    public void A_run_state_without_a_last_loss_or_checkpoint_keeps_its_records_before_its_histories()
    {
        var snapshot = RunSnapshot.Of(new RunState(1, Cfg).Apply(new RunStarted(1, false)));
        Assert.Equal("""{"RunId":1,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16},"Status":"Ongoing","ChunksPerEpoch":1,"HasValidation":false,"EpochsDone":0,"ChunksDone":0,"ValidationDone":false,"TrainClosed":false,"ValidationClosed":false,"Converged":false,"ChunkMetrics":[],"ResumedByUser":false,"TrainRecords":[],"ValidationRecords":[],"TrainHistory":[],"ValidationHistory":[]}""",
            JournalSerializer.ToJson(snapshot));
    }

    // ---- interactive control ----

    private static readonly DateTime At = new(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    /// <summary>Writes <paramref name="e"/>, checks the JSON, reads it back and checks it writes the same JSON again.</summary>
    private static T Pinned<T>(T e, string json) where T : notnull
    {
        Assert.Equal(json, JournalSerializer.ToJson(e));
        var back = JournalSerializer.FromJson<T>(json);
        Assert.Equal(json, JournalSerializer.ToJson(back));
        return back;
    }

    [Fact]
    public void A_control_request_without_a_new_run_is_written_as_this_json_and_reads_back_equal()
    {
        var back = Pinned(new ControlRequested(1, At, ControlOp.Stop(2), 1, null),
            """{"OpId":1,"RequestedUtc":"2025-01-02T03:04:05Z","Op":{"Kind":"Stop","RunId":2,"Warm":false},"FitId":1}""");
        Assert.Equal(new ControlRequested(1, At, ControlOp.Stop(2), 1, null), back);
        Assert.Equal(DateTimeKind.Utc, back.RequestedUtc.Kind);
    }

    [Fact]
    public void A_clone_request_with_its_changes_and_new_run_is_written_as_this_json_and_reads_back_equal()
    {
        var changes = new Dictionary<string, string> { ["optimizer.args.lr"] = "0.01", ["model"] = "\"cnn\"" };
        var e = new ControlRequested(2, At, ControlOp.CloneOf(1, changes, warm: true), 1, new ExperimentProtocol.RunDefinition(3, Cfg, 1, true));

        var back = Pinned(e, """{"OpId":2,"RequestedUtc":"2025-01-02T03:04:05Z","Op":{"Kind":"Clone","RunId":1,"Changes":{"optimizer.args.lr":"0.01","model":"\u0022cnn\u0022"},"Warm":true},"FitId":1,"NewRun":{"RunId":3,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16},"ClonedFrom":1,"Warm":true}}""");

        Assert.Equal((ControlKind.Clone, 1, true), (back.Op.Kind, back.Op.RunId, back.Op.Warm));
        Assert.Equal(changes, back.Op.Changes);
        Assert.Equal(e.NewRun, back.NewRun);
    }

    [Fact]
    public void A_control_resolution_is_written_as_this_json_and_reads_back_equal()
    {
        var e = new ControlResolved(2, At, ControlStatus.Dropped, "the fit was cancelled before the operation took effect");
        Assert.Equal(e, Pinned(e, """{"OpId":2,"ResolvedUtc":"2025-01-02T03:04:05Z","Status":"Dropped","Outcome":"the fit was cancelled before the operation took effect"}"""));
    }

    [Fact]
    public void A_run_resumed_event_is_an_empty_object()
    {
        Assert.Equal(new RunResumed(), Pinned(new RunResumed(), "{}"));
    }

    [Fact]
    public void A_warm_start_is_written_with_the_state_it_starts_from_and_reads_back_equal()
    {
        var parent = new RunState(1, Cfg).Apply(new RunStarted(2, false))
            .Apply(new ChunkCompleted(0, 0, 0.9, [], new CheckpointRef(1, 0, 0)));
        var e = new RunWarmStarted(1, RunSnapshot.Of(parent.WarmCloneAs(3, Cfg, new CheckpointRef(3, 0, 0))));

        var back = Pinned(e, """{"ParentRunId":1,"State":{"RunId":3,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16},"Status":"Ongoing","ChunksPerEpoch":2,"HasValidation":false,"EpochsDone":0,"ChunksDone":1,"ValidationDone":false,"TrainClosed":false,"ValidationClosed":false,"Converged":false,"ChunkMetrics":[{}],"ResumedByUser":false,"LastTrainLoss":0.9,"TrainRecords":[],"ValidationRecords":[],"LastCheckpoint":{"RunId":3,"Epoch":0,"Chunk":0},"TrainHistory":[],"ValidationHistory":[]}}""");

        Assert.Equal(1, back.ParentRunId);
        Assert.Equal((3, RunStatus.Ongoing, 1, new CheckpointRef(3, 0, 0)), (back.State.Run.RunId, back.State.Run.Status, back.State.Run.ChunksDone, back.State.Run.LastCheckpoint));
        Assert.Equal(Cfg, back.State.Run.Config);
    }

    [Fact]
    public void A_run_definition_names_its_parent_and_warm_only_when_set()
    {
        Pinned(new ExperimentProtocol.RunDefinition(3, Cfg),
            """{"RunId":3,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16}}""");
        Assert.Equal(new ExperimentProtocol.RunDefinition(3, Cfg, 1), Pinned(new ExperimentProtocol.RunDefinition(3, Cfg, 1, Warm: false),
            """{"RunId":3,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16},"ClonedFrom":1}"""));
        Assert.Equal(new ExperimentProtocol.RunDefinition(3, Cfg, 1, true), Pinned(new ExperimentProtocol.RunDefinition(3, Cfg, 1, Warm: true),
            """{"RunId":3,"Config":{"hidden":8,"lr":0.5,"epochs":2,"batch_size":16},"ClonedFrom":1,"Warm":true}"""));
    }

    // LoaderCount follows the machine's cores unless Loaders is set; it is not journaled.
    private static readonly RuntimeSettings Settings = new(Loaders: 3);

    private const string FitJsonStart =
        """{"FitId":1,"Spec":{"TypeName":"My.Spec, My","Name":"My.Spec"},"DataHandleJson":"{}","DataDirectory":"/data","Settings":{"Chunks":4,"Devices":"cpu","Seed":42,"Prefetch":4,"Loaders":3,"TorchThreads":0,"SaveStrategy":"time","KeepCheckpoints":2,"SnapshotEvery":100,"JournalIdPrefix":""}""";

    [Fact]
    public void A_fit_definition_without_a_pruning_rule_leaves_it_out()
    {
        var back = Pinned(new FitDefinition(1, new SpecReference(null, null, "My.Spec, My"), "{}", "/data", Settings), FitJsonStart + "}");
        Assert.Null(back.Pruning);
    }

    [Fact]
    public void A_fit_definition_with_a_pruning_rule_is_written_as_this_json_and_reads_back_equal()
    {
        var rule = new PruningRule(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max) { Eta = 2, Resource = PruningResource.Chunks };
        var back = Pinned(new FitDefinition(1, new SpecReference(null, null, "My.Spec, My"), "{}", "/data", Settings, rule),
            FitJsonStart + ""","Pruning":{"Kind":"SuccessiveHalving","Metric":"top1_accuracy","Mode":"Max","Resource":"Chunks","Eta":2,"MinResource":1,"MinSamples":3}}""");
        Assert.Equal(rule, back.Pruning);
        Assert.Equal(Settings, back.Settings);
    }

    [Fact]
    public void A_median_rule_reads_back_with_its_min_samples()
    {
        var rule = new PruningRule(PruningKind.MedianStopping, "loss", MetricGoal.Min) { MinResource = 2, MinSamples = 4 };
        var back = JournalSerializer.FromJson<FitDefinition>(JournalSerializer.ToJson(
            new FitDefinition(2, new SpecReference(null, null, "My.Spec, My"), "{}", "/data", Settings, rule)));
        Assert.Equal(rule, back.Pruning);
    }

    [Fact]
    public void Every_ic_event_has_its_manifest()
    {
        Assert.Equal("control-requested.v1", EventSchema.ManifestOf(typeof(ControlRequested)));
        Assert.Equal("control-resolved.v1", EventSchema.ManifestOf(typeof(ControlResolved)));
        Assert.Equal("run-resumed.v1", EventSchema.ManifestOf(typeof(RunResumed)));
        Assert.Equal("run-warm-started.v1", EventSchema.ManifestOf(typeof(RunWarmStarted)));
    }
}
