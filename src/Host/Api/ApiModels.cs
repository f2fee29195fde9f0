using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Host.Api;

// The JSON the HTTP API speaks, one record per document. Server and client share these records, so a field renamed
// here is renamed on both sides; names are snake_case on the wire (ApiJson.Options).

/// <summary>The JSON settings of the HTTP API: snake_case names, enums as snake_case strings, NaN and infinities as strings.</summary>
public static class ApiJson
{
    /// <summary>The serializer options of every API document (server and client).</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null, // knob paths and metric names are keys as they are
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, // a diverged run's loss is NaN
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}

/// <summary><c>GET /api/experiment</c>: which experiment the host serves.</summary>
/// <param name="Name">The experiment's name.</param>
/// <param name="Path">The experiment's folder.</param>
/// <param name="Fitting">Whether a fit is in progress.</param>
public sealed record ExperimentView(string Name, string Path, bool Fitting);

/// <summary>One run as <c>GET /api/runs</c> lists it.</summary>
/// <param name="RunId">The run's id.</param>
/// <param name="Status">Where the run is in its life.</param>
/// <param name="EndedBy">Why it ended (<see cref="EndReason"/>), once it has.</param>
/// <param name="Progress">A one-line progress description (<see cref="RunState.Where"/>).</param>
/// <param name="EpochsDone">Epochs completed.</param>
/// <param name="MaxEpochs">The config's <c>epochs</c>.</param>
/// <param name="ChunksDone">Chunks trained in the current epoch.</param>
/// <param name="ChunksPerEpoch">Chunks per epoch (0 before the run starts).</param>
/// <param name="Knobs">Every leaf knob by dotted path (<c>optimizer.args.lr</c>), with its JSON value; a secret one
/// (<see cref="SecretMask"/>: <c>api_key</c>, <c>hf_token</c>, ...) is <c>"***"</c>.</param>
/// <param name="TrainLoss">The mean train loss of the last chunk trained.</param>
/// <param name="Train">The train metrics of the last completed epoch, if any.</param>
/// <param name="Validation">The validation metrics of the last completed epoch, if any.</param>
/// <param name="Error">What failed the run, for a failed run.</param>
public sealed record RunView(int RunId, RunStatus Status, string? EndedBy, string Progress, int EpochsDone, int MaxEpochs, int ChunksDone,
    int ChunksPerEpoch, IReadOnlyDictionary<string, JsonElement> Knobs, double? TrainLoss, IReadOnlyDictionary<string, double>? Train,
    IReadOnlyDictionary<string, double>? Validation, string? Error)
{
    /// <summary>The view of <paramref name="run"/>.</summary>
    public static RunView Of(RunState run) => new(run.RunId, run.Status, run.EndedBy, run.Where, run.EpochsDone, run.MaxEpochs,
        run.ChunksDone, run.ChunksPerEpoch, KnobsOf(run.Config), run.LastTrainLoss,
        run.TrainHistory.Count > 0 ? run.TrainHistory[^1] : null,
        run.ValidationHistory.Count > 0 ? run.ValidationHistory[^1] : null,
        run.Failure is null ? null : RunFailure.Printable(run.Failure.ToString()));

    /// <summary>A knob's value as a table shows it: strings without quotes, numbers and lists as JSON.</summary>
    public static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? "",
        JsonValueKind.Null or JsonValueKind.Undefined => "",
        _ => value.GetRawText(),
    };

    private static Dictionary<string, JsonElement> KnobsOf(Config config)
    {
        var knobs = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (path, value) in SecretMask.Mask(config).Leaves())
        {
            using var document = JsonDocument.Parse(ConfigValue.ToJson(value));
            knobs[path] = document.RootElement.Clone();
        }
        return knobs;
    }
}

/// <summary>The answer to <c>POST /api/runs/{id}/stop|resume|delete|clone</c>: the <see cref="ControlOutcome"/>.</summary>
/// <param name="OpId">The operation's id in the IC log.</param>
/// <param name="Operation">stop, resume, delete, clone or clone-warm.</param>
/// <param name="RunId">The run it was asked for.</param>
/// <param name="Status">Where it stands.</param>
/// <param name="Message">For the user: when it takes effect, or why it was refused.</param>
/// <param name="NewRunId">For a clone: the new run's id.</param>
public sealed record OutcomeView(int OpId, string Operation, int RunId, ControlStatus Status, string Message, int? NewRunId)
{
    /// <summary>The view of <paramref name="outcome"/>.</summary>
    public static OutcomeView Of(ControlOutcome outcome) =>
        new(outcome.OpId, outcome.Op.Name, outcome.Op.RunId, outcome.Status, outcome.Message, outcome.NewRunId);

    /// <summary>One line for the CLI: <c>op 3: stop run 2: pending — takes effect at run 2's next chunk boundary</c>.</summary>
    public override string ToString()
    {
        var newRun = NewRunId is { } id && !Message.Contains($"run {id}", StringComparison.Ordinal)
            ? string.Create(CultureInfo.InvariantCulture, $" (new run {id})")
            : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"op {OpId}: {Operation} run {RunId}: {Status.ToString().ToLowerInvariant()} — {Message}{newRun}");
    }
}

/// <summary>One line of <c>GET /api/ic-log</c>: a <see cref="ControlRecord"/>.</summary>
/// <param name="OpId">The operation's id.</param>
/// <param name="RequestedUtc">When it was asked for.</param>
/// <param name="Operation">stop, resume, delete, clone or clone-warm.</param>
/// <param name="RunId">The run it was asked for.</param>
/// <param name="Arguments">A clone's knob changes, <c>optimizer.args.lr=0.01 hidden=64</c>; empty otherwise.</param>
/// <param name="Status">Where it stands.</param>
/// <param name="Outcome">What came of it, for the user.</param>
/// <param name="NewRunId">For a clone: the new run's id.</param>
/// <param name="ResolvedUtc">When it took effect, was dropped or was refused; null while pending.</param>
/// <param name="Origin">For an automatic operation (PBT's warm clones), who asked for it and why; null for a user's.</param>
public sealed record ControlLogEntry(int OpId, DateTime RequestedUtc, string Operation, int RunId, string Arguments, ControlStatus Status,
    string Outcome, int? NewRunId, DateTime? ResolvedUtc, string? Origin = null)
{
    /// <summary>The view of <paramref name="record"/>.</summary>
    public static ControlLogEntry Of(ControlRecord record) => new(record.OpId, record.RequestedUtc, record.Op.Name, record.Op.RunId,
        record.Op.Arguments, record.Status, record.Outcome, record.NewRunId, record.ResolvedUtc, record.Op.Origin);
}

/// <summary>The body of an error answer (400, 404, 409 without an outcome, 413, 500).</summary>
/// <param name="Error">What is wrong, naming the thing at fault.</param>
public sealed record ErrorView(string Error);
