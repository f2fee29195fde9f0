using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Persistence;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
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
        var state = new RunState(2, Cfg).Apply(new RunStarted(3, true))
            .Apply(new ChunkCompleted(0, 0, 0.9, [], new CheckpointRef(2, 0, 0)))
            .Apply(new RunEnded(RunStatus.Stopped, EndReason.Cancelled, null));
        var back = JournalSerializer.FromJson<RunState>(JournalSerializer.ToJson(state));
        Assert.Equal(JournalSerializer.ToJson(state), JournalSerializer.ToJson(back));
        Assert.Equal((RunStatus.Stopped, 1, new CheckpointRef(2, 0, 0)), (back.Status, back.ChunksDone, back.LastCheckpoint));
        Assert.Equal(Cfg, back.Config);
    }
}
