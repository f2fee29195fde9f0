using System.Globalization;
using System.Text.Json;

namespace RapidFire.Spec.Configs;

/// <summary>Which automatic pruning rule judges the runs of a fit.</summary>
public enum PruningKind
{
    /// <summary>Synchronous successive halving (<c>"sha"</c>): runs wait at each rung for the others, then only the best 1/eta go on.</summary>
    SuccessiveHalving,
    /// <summary>Asynchronous successive halving (<c>"asha"</c>): a run arriving at a rung goes on only if it is among the best 1/eta there so far.</summary>
    AsyncSuccessiveHalving,
    /// <summary>Median stopping (<c>"median"</c>): a run is stopped when it is worse than the median of the others at the same point.</summary>
    MedianStopping,
}

/// <summary>Whether higher or lower values of a metric are better.</summary>
public enum MetricGoal
{
    /// <summary>Higher is better (<c>"max"</c>), such as an accuracy.</summary>
    Max,
    /// <summary>Lower is better (<c>"min"</c>), such as a loss.</summary>
    Min,
}

/// <summary>What a pruning rule counts a run's progress in.</summary>
public enum PruningResource
{
    /// <summary>Epochs (<c>"epochs"</c>): the metric after each epoch.</summary>
    Epochs,
    /// <summary>Chunks (<c>"chunks"</c>), counted over the whole fit: the metric after each chunk.</summary>
    Chunks,
}

/// <summary>
/// An automatic pruning rule: which runs of a fit to stop early, judged by one metric. It is the <c>"pruning"</c>
/// object of a config group (see <see cref="ConfigGroup.FromJson"/>) and is attached in C# with
/// <see cref="ConfigGroup.WithPruning"/>:
/// <code>
/// var group = new GridSearch(template).WithPruning(
///     new PruningRule(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max) { Eta = 2 });
/// </code>
/// </summary>
/// <remarks>
/// The record is not checked when built; <see cref="Validate"/> (and <see cref="ConfigGroup.Validate"/> of the group
/// carrying it) reports every fault at its path, such as <c>pruning.eta</c>. A setting that the rule does not use
/// must keep its default (<see cref="Eta"/> for median, <see cref="MinSamples"/> for sha and asha), as the JSON
/// format rejects it there: so a valid rule written to JSON reads back equal.
/// </remarks>
/// <param name="Kind">The rule.</param>
/// <param name="Metric">The metric the rule ranks runs by, as the run's metrics name it, such as <c>top1_accuracy</c> or <c>loss</c>.</param>
/// <param name="Mode">Whether higher (<see cref="MetricGoal.Max"/>) or lower (<see cref="MetricGoal.Min"/>) values are better.</param>
public sealed record PruningRule(PruningKind Kind, string Metric, MetricGoal Mode)
{
    /// <summary>The key of the rule in a config group's JSON: <c>"pruning"</c>.</summary>
    public const string JsonKey = "pruning";

    /// <summary>The default <see cref="Eta"/>.</summary>
    public const int DefaultEta = 3;

    /// <summary>The default <see cref="MinResource"/>.</summary>
    public const int DefaultMinResource = 1;

    /// <summary>The default <see cref="MinSamples"/>.</summary>
    public const int DefaultMinSamples = 3;

    /// <summary>What progress is counted in; epochs by default.</summary>
    public PruningResource Resource { get; init; } = PruningResource.Epochs;

    /// <summary>
    /// For sha and asha: the reduction factor, a whole number &gt;= 2. Rungs sit at <see cref="MinResource"/>·Eta^k
    /// units, and at each rung the best 1/Eta of the runs go on.
    /// </summary>
    public int Eta { get; init; } = DefaultEta;

    /// <summary>
    /// A whole number &gt;= 1: for sha and asha the first rung (in units of <see cref="Resource"/>); for median the
    /// grace period, the first point at which a run may be stopped.
    /// </summary>
    public int MinResource { get; init; } = DefaultMinResource;

    /// <summary>
    /// For median only: how many other runs must have reached a point before a run may be stopped there, a whole
    /// number &gt;= 1.
    /// </summary>
    public int MinSamples { get; init; } = DefaultMinSamples;

    /// <summary>The rule's name as the JSON format spells it: <c>sha</c>, <c>asha</c> or <c>median</c>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Name => NameOf(Kind);

    /// <summary>The <c>ended_by</c> of a run this rule stopped: <c>sha</c>, <c>asha</c> or <c>median</c>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string EndedBy => Name;

    /// <summary>The name of a rule as the JSON format spells it: <c>sha</c>, <c>asha</c> or <c>median</c>.</summary>
    public static string NameOf(PruningKind kind) => kind switch
    {
        PruningKind.SuccessiveHalving => Sha,
        PruningKind.AsyncSuccessiveHalving => Asha,
        PruningKind.MedianStopping => Median,
        _ => ((int)kind).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>The name of a resource as the JSON format spells it: <c>epochs</c> or <c>chunks</c>.</summary>
    public static string NameOf(PruningResource resource) => resource switch
    {
        PruningResource.Epochs => Epochs,
        PruningResource.Chunks => Chunks,
        _ => ((int)resource).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Every fault of the rule, each at its path as the JSON format spells it (<c>pruning.eta</c>); empty when valid.</summary>
    public IReadOnlyList<ConfigError> Validate()
    {
        var errors = new ErrorSink();
        Collect(errors.Under(JsonKey));
        return errors.Errors;
    }

    // ---- the JSON form ----

    private const string RuleKey = "rule", MetricKey = "metric", ModeKey = "mode", ResourceKey = "resource";
    private const string EtaKey = "eta", MinResourceKey = "min_resource", MinSamplesKey = "min_samples";
    private const string Sha = "sha", Asha = "asha", Median = "median", Max = "max", Min = "min", Epochs = "epochs", Chunks = "chunks";
    private static readonly string[] Keys = [RuleKey, MetricKey, ModeKey, ResourceKey, EtaKey, MinResourceKey, MinSamplesKey];

    private const string RuleExpected = "must be sha, asha or median";
    private const string MetricExpected = "the metric the rule ranks runs by, such as top1_accuracy or loss";

    private static bool UsesEta(PruningKind kind) => kind != PruningKind.MedianStopping;

    private static bool UsesMinSamples(PruningKind kind) => kind == PruningKind.MedianStopping;

    private static string OnlyEta(PruningKind kind) => $"applies only to sha and asha (this rule is {NameOf(kind)})";

    private static string OnlyMinSamples(PruningKind kind) => $"applies only to median (this rule is {NameOf(kind)})";

    private static string WholeNumber(int min) => $"must be a whole number >= {min}";

    /// <summary>Faults of a rule built in C#, under the sink's prefix (<c>pruning</c>).</summary>
    internal void Collect(ErrorSink errors)
    {
        if (!Enum.IsDefined(Kind)) errors.Add(RuleKey, $"{RuleExpected}, got {(int)Kind}");
        if (string.IsNullOrWhiteSpace(Metric)) errors.Add(MetricKey, $"is missing: {MetricExpected}");
        if (!Enum.IsDefined(Mode)) errors.Add(ModeKey, $"must be max or min, got {(int)Mode}");
        if (!Enum.IsDefined(Resource)) errors.Add(ResourceKey, $"must be epochs or chunks, got {(int)Resource}");
        if (Enum.IsDefined(Kind) && !UsesEta(Kind) && Eta != DefaultEta) errors.Add(EtaKey, OnlyEta(Kind));
        else if (Eta < 2) errors.Add(EtaKey, $"{WholeNumber(2)}, got {Eta}");
        if (MinResource < 1) errors.Add(MinResourceKey, $"{WholeNumber(1)}, got {MinResource}");
        if (Enum.IsDefined(Kind) && !UsesMinSamples(Kind) && MinSamples != DefaultMinSamples) errors.Add(MinSamplesKey, OnlyMinSamples(Kind));
        else if (MinSamples < 1) errors.Add(MinSamplesKey, $"{WholeNumber(1)}, got {MinSamples}");
    }

    /// <summary>
    /// Reads the <c>"pruning"</c> value at <paramref name="path"/>; every fault goes to <paramref name="errors"/>.
    /// Null when the value is <c>null</c> or has a fault.
    /// </summary>
    internal static PruningRule? Read(JsonElement e, string path, ErrorSink errors)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind != JsonValueKind.Object)
        {
            errors.Add(path, "must be an object such as {\"rule\": \"sha\", \"metric\": \"top1_accuracy\", \"mode\": \"max\"}, " +
                $"got {ConfigJson.Describe(e)}");
            return null;
        }

        var count = errors.Errors.Count;
        var props = ConfigJson.Properties(e, path, errors);
        string At(string key) => KnobPath.Join(path, key);
        foreach (var key in props.Keys.Where(k => !Keys.Contains(k)))
            errors.Add(At(key), $"unknown key in pruning; expected one of: {string.Join(", ", Keys)}");

        PruningKind? kind = null;
        if (!props.TryGetValue(RuleKey, out var r)) errors.Add(At(RuleKey), "is missing: sha, asha or median");
        else kind = Word(r) switch
        {
            Sha => PruningKind.SuccessiveHalving,
            Asha => PruningKind.AsyncSuccessiveHalving,
            Median => PruningKind.MedianStopping,
            _ => Fault<PruningKind>(At(RuleKey), $"{RuleExpected}, got {Quote(r)}", errors),
        };

        string? metric = null;
        if (!props.TryGetValue(MetricKey, out var m)) errors.Add(At(MetricKey), $"is missing: {MetricExpected}");
        else if (m.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(m.GetString())) metric = m.GetString();
        else errors.Add(At(MetricKey), $"must be a metric name ({MetricExpected}), got {Quote(m)}");

        MetricGoal? mode = null;
        if (!props.TryGetValue(ModeKey, out var g)) errors.Add(At(ModeKey), "is missing: max or min (whether higher or lower values of the metric are better)");
        else mode = Word(g) switch
        {
            Max => MetricGoal.Max,
            Min => MetricGoal.Min,
            _ => Fault<MetricGoal>(At(ModeKey), $"must be max or min, got {Quote(g)}", errors),
        };

        var resource = PruningResource.Epochs;
        if (props.TryGetValue(ResourceKey, out var s))
            resource = Word(s) switch
            {
                Epochs => PruningResource.Epochs,
                Chunks => PruningResource.Chunks,
                _ => Fault<PruningResource>(At(ResourceKey), $"must be epochs or chunks, got {Quote(s)}", errors),
            } ?? resource;

        int Int(string key, int min, int fallback, bool applies, string notApplicable)
        {
            if (!props.TryGetValue(key, out var v)) return fallback;
            if (!applies)
            {
                errors.Add(At(key), notApplicable);
                return fallback;
            }
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n >= min) return n;
            errors.Add(At(key), $"{WholeNumber(min)}, got {v.GetRawText()}");
            return fallback;
        }
        // with an unknown rule, eta and min_samples are still checked as numbers
        var eta = Int(EtaKey, 2, DefaultEta, kind is not { } k1 || UsesEta(k1), kind is { } k2 ? OnlyEta(k2) : "");
        var minResource = Int(MinResourceKey, 1, DefaultMinResource, applies: true, "");
        var minSamples = Int(MinSamplesKey, 1, DefaultMinSamples, kind is not { } k3 || UsesMinSamples(k3), kind is { } k4 ? OnlyMinSamples(k4) : "");

        if (errors.Errors.Count > count || kind is null || metric is null || mode is null) return null;
        return new PruningRule(kind.Value, metric, mode.Value)
        {
            Resource = resource,
            Eta = eta,
            MinResource = minResource,
            MinSamples = minSamples,
        };
    }

    private static string? Word(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    private static string Quote(JsonElement e) => e.ValueKind == JsonValueKind.String ? $"'{e.GetString()}'" : e.GetRawText();

    private static T? Fault<T>(string path, string message, ErrorSink errors) where T : struct
    {
        errors.Add(path, message);
        return null;
    }

    /// <summary>Writes the rule as the value of <c>"pruning"</c>, with every setting the rule uses spelled out.</summary>
    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString(RuleKey, Name);
        w.WriteString(MetricKey, Metric);
        w.WriteString(ModeKey, Mode == MetricGoal.Max ? Max : Min);
        w.WriteString(ResourceKey, NameOf(Resource));
        if (UsesEta(Kind)) w.WriteNumber(EtaKey, Eta);
        w.WriteNumber(MinResourceKey, MinResource);
        if (UsesMinSamples(Kind)) w.WriteNumber(MinSamplesKey, MinSamples);
        w.WriteEndObject();
    }
}
