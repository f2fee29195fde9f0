using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Persistence;

namespace RapidFire.Actors.Runs;

/// <summary>
/// The minibatch records of a run's current epoch: what its epoch metrics are closed from. The RunActor keeps them
/// beside its <see cref="RunState"/>, folded by the same events; they are journaled in <see cref="ChunkCompleted"/>
/// and <see cref="ValidationCompleted"/> and saved in snapshots and checkpoint headers (<see cref="RunSnapshot"/>),
/// never carried by the messages that carry a run's state.
/// </summary>
/// <param name="TrainRecords">The records of the current epoch's trained chunks.</param>
/// <param name="ValidationRecords">The records of the current epoch's validation pass.</param>
public sealed record EpochRecords(IReadOnlyList<MinibatchRecord> TrainRecords, IReadOnlyList<MinibatchRecord> ValidationRecords)
{
    /// <summary>No records: a new epoch's.</summary>
    public static EpochRecords Empty { get; } = new([], []);

    /// <summary>The records after <paramref name="e"/>, as <see cref="RunState.Apply"/> folds the state.</summary>
    public EpochRecords Apply(IRunEvent e) => e switch
    {
        ChunkCompleted c => this with { TrainRecords = [.. TrainRecords, .. c.Records] },
        ValidationCompleted v => this with { ValidationRecords = v.Records },
        EpochCompleted => Empty,
        RestoredFromCheckpoint restored => restored.State.Records,
        RunWarmStarted warm => warm.State.Records,
        _ => this,
    };

    /// <summary>
    /// The records a warm clone <paramref name="runId"/> of a run at <paramref name="at"/> starts its epoch with: those of
    /// the chunks (and the validation pass) <paramref name="at"/> has done in its current epoch, under the clone's id.
    /// <paramref name="closed"/> are the run's records of the epoch before, in case it has moved on since.
    /// </summary>
    public EpochRecords CloneAs(int runId, RunState at, EpochRecords closed)
    {
        bool InEpoch(MinibatchRecord r) => r.Epoch == at.EpochsDone;
        return new(
            [.. closed.TrainRecords.Concat(TrainRecords).Where(r => InEpoch(r) && r.Chunk < at.ChunksDone).Select(r => r with { RunId = runId })],
            at.ValidationDone ? [.. closed.ValidationRecords.Concat(ValidationRecords).Where(InEpoch).Select(r => r with { RunId = runId })] : []);
    }
}

/// <summary>
/// A run's state with its current epoch's records: what a snapshot, a checkpoint's header and the events that set a
/// run's state (<see cref="RestoredFromCheckpoint"/>, <see cref="RunWarmStarted"/>) hold, so that a run restored from
/// one closes its epoch's metrics as it would have. Written as one JSON object, the state's fields with
/// <c>TrainRecords</c> and <c>ValidationRecords</c> among them: the shape journals and checkpoints have always held.
/// </summary>
/// <param name="Run">The run's state.</param>
/// <param name="Records">Its current epoch's records.</param>
[JsonConverter(typeof(RunSnapshotJsonConverter))]
public sealed record RunSnapshot(RunState Run, EpochRecords Records) : IJournaled
{
    /// <summary>A state whose epoch has no records yet.</summary>
    public static RunSnapshot Of(RunState run) => new(run, EpochRecords.Empty);

    /// <summary>The snapshot after <paramref name="e"/>.</summary>
    public RunSnapshot Apply(IRunEvent e) => new(Run.Apply(e), Records.Apply(e));
}

/// <summary>
/// Writes a <see cref="RunSnapshot"/> as the state's JSON object with the records' two fields before
/// <c>LastCheckpoint</c> (or <c>TrainHistory</c>), where they stood when they were fields of the state; reads both
/// from one object.
/// </summary>
internal sealed class RunSnapshotJsonConverter : JsonConverter<RunSnapshot>
{
    public override RunSnapshot Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        var run = root.Deserialize<RunState>(options) ?? throw new JsonException("a run snapshot holds no state");
        var records = root.Deserialize<EpochRecords>(options) ?? EpochRecords.Empty;
        return new RunSnapshot(run, new EpochRecords(records.TrainRecords ?? [], records.ValidationRecords ?? []));
    }

    public override void Write(Utf8JsonWriter writer, RunSnapshot value, JsonSerializerOptions options)
    {
        var state = JsonSerializer.SerializeToNode(value.Run, options)!.AsObject();
        var output = new JsonObject();
        var placed = false;
        foreach (var (name, node) in state.ToList())
        {
            if (!placed && name is "LastCheckpoint" or "TrainHistory")
            {
                AddRecords(output, value.Records, options);
                placed = true;
            }
            state.Remove(name);
            output[name] = node;
        }
        if (!placed) AddRecords(output, value.Records, options);
        output.WriteTo(writer, options);
    }

    private static void AddRecords(JsonObject output, EpochRecords records, JsonSerializerOptions options)
    {
        output[nameof(EpochRecords.TrainRecords)] = JsonSerializer.SerializeToNode(records.TrainRecords, options);
        output[nameof(EpochRecords.ValidationRecords)] = JsonSerializer.SerializeToNode(records.ValidationRecords, options);
    }
}
