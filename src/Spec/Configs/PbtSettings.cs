using System.Globalization;
using System.Text.Json;

namespace RapidFire.Spec.Configs;

/// <summary>How Population Based Training changes a knob of a warm clone that replaces a run (see <see cref="PbtSettings"/>).</summary>
public enum PbtMutationKind
{
    /// <summary>Multiply the parent's value by one of <see cref="PbtMutation.Factors"/>, drawn uniformly (a whole-number knob is rounded, at least 1).</summary>
    Factors,
    /// <summary>Draw a value anew from the knob's List (the values the group's configs give it), uniformly.</summary>
    Resample,
    /// <summary>Keep the parent's value.</summary>
    Keep,
}

/// <summary>The mutation of one knob: <c>{"factors": [0.8, 1.2]}</c>, <c>"resample"</c> or <c>"keep"</c>.</summary>
/// <param name="Kind">What is done to the knob.</param>
/// <param name="Factors">For <see cref="PbtMutationKind.Factors"/>: the factors, each a positive finite number.</param>
/// <param name="Options">
/// For <see cref="PbtMutationKind.Resample"/>: the values to draw from, as JSON, in the order the group's configs first
/// give them. Filled in from the group when a fit starts (<see cref="PbtSearch.Settings"/>), so that a resumed fit draws
/// from the same values.
/// </param>
public sealed record PbtMutation(PbtMutationKind Kind, IReadOnlyList<double>? Factors = null, IReadOnlyList<string>? Options = null);

/// <summary>
/// Population Based Training over a grid of configs (<c>"search": "pbt"</c>, see <see cref="PbtSearch"/>): every
/// <see cref="PerturbationInterval"/> epochs (or chunks), once every run of the population has got there, the runs in
/// the bottom <see cref="Quantile"/> by <see cref="Metric"/> are stopped and each is replaced by a warm clone of a run
/// of the top quantile with its knobs mutated (<see cref="Mutations"/>). Which parent and which mutation are drawn
/// from <see cref="Seed"/> and the point alone, so the same fit makes the same decisions.
/// </summary>
/// <param name="Metric">The metric runs are ranked by: the validation metric when the data has a validation partition, else the train metric.</param>
/// <param name="Mode">Whether higher or lower values are better.</param>
public sealed record PbtSettings(string Metric, MetricGoal Mode)
{
    /// <summary>The key of the settings in a config group's JSON: <c>"pbt"</c>.</summary>
    public const string JsonKey = "pbt";

    /// <summary>The <c>ended_by</c> of a run PBT replaced.</summary>
    public const string EndedBy = "pbt";

    /// <summary>The default <see cref="Quantile"/>.</summary>
    public const double DefaultQuantile = 0.25;

    /// <summary>How many epochs (or chunks) between two exploit points; a whole number &gt;= 1.</summary>
    public int PerturbationInterval { get; init; } = 1;

    /// <summary>What <see cref="PerturbationInterval"/> counts.</summary>
    public PruningResource Resource { get; init; } = PruningResource.Epochs;

    /// <summary>The fraction of the population replaced at each point (and the fraction its parents come from), in (0, 0.5].</summary>
    public double Quantile { get; init; } = DefaultQuantile;

    /// <summary>The mutation of each knob a clone changes, by its dotted path in a config (<c>optimizer.args.lr</c>, <c>hidden</c>).</summary>
    public IReadOnlyDictionary<string, PbtMutation> Mutations { get; init; } = new Dictionary<string, PbtMutation>();

    /// <summary>The seed of the draws of parents and mutations.</summary>
    public int Seed { get; init; }

    private const string IntervalKey = "perturbation_interval", QuantileKey = "quantile", MetricKey = "metric", ModeKey = "mode",
        ResourceKey = "resource", MutationsKey = "mutations", FactorsKey = "factors", Resample = "resample", Keep = "keep";

    private static readonly string[] Keys = [IntervalKey, QuantileKey, MetricKey, ModeKey, ResourceKey, MutationsKey];

    /// <summary>
    /// The faults of the settings over <paramref name="population"/> (the group's configs), at their paths under
    /// <c>pbt</c>: each mutated knob must be in every config, a factor mutation must be of a number, a resample of a knob
    /// the configs give at least two values.
    /// </summary>
    internal void Collect(ErrorSink errors, IReadOnlyList<Config> population)
    {
        if (string.IsNullOrWhiteSpace(Metric)) errors.Add(MetricKey, "must be a metric name, such as top1_accuracy or loss");
        if (PerturbationInterval < 1) errors.Add(IntervalKey, $"must be a whole number >= 1, got {PerturbationInterval}");
        if (!(Quantile > 0 && Quantile <= 0.5)) errors.Add(QuantileKey, $"must be a fraction in (0, 0.5], got {Quantile.ToString(CultureInfo.InvariantCulture)}");
        if (Mutations.Count == 0) errors.Add(MutationsKey, "must name at least one knob to mutate, such as {\"optimizer.args.lr\": {\"factors\": [0.8, 1.2]}}");
        if (population.Count < 2)
            errors.Add("", $"a population needs at least 2 configs (give the group List knobs); this group has {population.Count}");
        foreach (var (path, mutation) in Mutations)
        {
            var at = KnobPath.Join(MutationsKey, path);
            var values = population.Select(c => c.Leaves().FirstOrDefault(l => l.Key == path)).ToList();
            if (population.Count > 0 && values.Any(v => v.Key is null))
            {
                errors.Add(at, $"is not a knob of every config of the group; their knobs are: {string.Join(", ", population[0].Leaves().Select(l => l.Key))}");
                continue;
            }
            switch (mutation.Kind)
            {
                case PbtMutationKind.Factors when mutation.Factors is not { Count: > 0 } factors || factors.Any(f => !(double.IsFinite(f) && f > 0)):
                    errors.Add(KnobPath.Join(at, FactorsKey), "must be a non-empty array of positive numbers, such as [0.8, 1.2]");
                    break;
                case PbtMutationKind.Factors when values.Any(v => v.Value is not (long or int or double)):
                    errors.Add(at, $"is multiplied by factors, so it must be a number in every config, got {Describe(values.First(v => v.Value is not (long or int or double)).Value)}");
                    break;
                case PbtMutationKind.Resample when OptionsOf(path, population).Count < 2:
                    errors.Add(at, "is resampled, so the group's configs must give it at least two values (make it a List knob)");
                    break;
            }
        }
    }

    /// <summary>These settings with every resample's <see cref="PbtMutation.Options"/> taken from <paramref name="population"/>.</summary>
    internal PbtSettings ResolvedOver(IReadOnlyList<Config> population) => this with
    {
        Mutations = Mutations.ToDictionary(kv => kv.Key, kv => kv.Value.Kind == PbtMutationKind.Resample
            ? kv.Value with { Options = OptionsOf(kv.Key, population) }
            : kv.Value),
    };

    private static List<string> OptionsOf(string path, IReadOnlyList<Config> population) =>
        population.SelectMany(c => c.Leaves().Where(l => l.Key == path)).Select(l => ConfigValue.ToJson(l.Value)).Distinct().ToList();

    private static string Describe(object? value) => value is null ? "null" : ConfigValue.ToJson(value);

    /// <summary>Reads the <c>"pbt"</c> value at <paramref name="path"/>; faults go to <paramref name="errors"/>, and null comes back.</summary>
    internal static PbtSettings? Read(JsonElement e, string path, int seed, ErrorSink errors)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            errors.Add(path, "must be an object such as {\"perturbation_interval\": 1, \"quantile\": 0.25, \"metric\": \"top1_accuracy\", " +
                $"\"mode\": \"max\", \"mutations\": {{\"optimizer.args.lr\": {{\"factors\": [0.8, 1.2]}}}}}}, got {ConfigJson.Describe(e)}");
            return null;
        }
        var count = errors.Errors.Count;
        var props = ConfigJson.Properties(e, path, errors);
        string At(string key) => KnobPath.Join(path, key);
        foreach (var key in props.Keys.Where(k => !Keys.Contains(k)))
            errors.Add(At(key), $"unknown key in pbt; expected one of: {string.Join(", ", Keys)}");

        string? metric = null;
        if (!props.TryGetValue(MetricKey, out var m)) errors.Add(At(MetricKey), "is missing: the metric runs are ranked by, such as top1_accuracy or loss");
        else if (m.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(m.GetString())) metric = m.GetString();
        else errors.Add(At(MetricKey), $"must be a metric name, got {m.GetRawText()}");

        MetricGoal? mode = null;
        if (!props.TryGetValue(ModeKey, out var g)) errors.Add(At(ModeKey), "is missing: max or min (whether higher or lower values of the metric are better)");
        else if (Word(g) is "max" or "min") mode = Word(g) == "max" ? MetricGoal.Max : MetricGoal.Min;
        else errors.Add(At(ModeKey), $"must be max or min, got {g.GetRawText()}");

        var resource = PruningResource.Epochs;
        if (props.TryGetValue(ResourceKey, out var r))
        {
            if (Word(r) is "epochs" or "chunks") resource = Word(r) == "epochs" ? PruningResource.Epochs : PruningResource.Chunks;
            else errors.Add(At(ResourceKey), $"must be epochs or chunks, got {r.GetRawText()}");
        }

        var interval = 1;
        if (props.TryGetValue(IntervalKey, out var i))
        {
            if (i.ValueKind == JsonValueKind.Number && i.TryGetInt32(out var n) && n >= 1) interval = n;
            else errors.Add(At(IntervalKey), $"must be a whole number >= 1 (epochs or chunks between exploits), got {i.GetRawText()}");
        }

        var quantile = DefaultQuantile;
        if (props.TryGetValue(QuantileKey, out var q))
        {
            if (q.ValueKind == JsonValueKind.Number && q.GetDouble() is var f && f > 0 && f <= 0.5) quantile = f;
            else errors.Add(At(QuantileKey), $"must be a fraction in (0, 0.5], got {q.GetRawText()}");
        }

        var mutations = new Dictionary<string, PbtMutation>(StringComparer.Ordinal);
        if (!props.TryGetValue(MutationsKey, out var ms))
            errors.Add(At(MutationsKey), "is missing: the knobs a clone mutates, such as {\"optimizer.args.lr\": {\"factors\": [0.8, 1.2]}, \"hidden\": \"resample\"}");
        else if (ms.ValueKind != JsonValueKind.Object)
            errors.Add(At(MutationsKey), $"must be an object of mutations by knob path, got {ConfigJson.Describe(ms)}");
        else
            foreach (var (knob, value) in ConfigJson.Properties(ms, At(MutationsKey), errors))
                if (ReadMutation(value, KnobPath.Join(At(MutationsKey), knob), errors) is { } mutation)
                    mutations[knob.StartsWith("optimizer.", StringComparison.Ordinal) && !knob.StartsWith("optimizer.args.", StringComparison.Ordinal) && knob != "optimizer.name"
                        ? "optimizer.args." + knob["optimizer.".Length..] // optimizer.lr means optimizer.args.lr, as in a clone's changes
                        : knob] = mutation;

        if (errors.Errors.Count > count || metric is null || mode is null) return null;
        return new PbtSettings(metric, mode.Value)
        {
            PerturbationInterval = interval,
            Resource = resource,
            Quantile = quantile,
            Mutations = mutations,
            Seed = seed,
        };
    }

    private static PbtMutation? ReadMutation(JsonElement e, string path, ErrorSink errors)
    {
        if (Word(e) == Resample) return new PbtMutation(PbtMutationKind.Resample);
        if (Word(e) == Keep) return new PbtMutation(PbtMutationKind.Keep);
        if (e.ValueKind == JsonValueKind.Object && e.EnumerateObject().Count() == 1 && e.TryGetProperty(FactorsKey, out var factors)
            && factors.ValueKind == JsonValueKind.Array && factors.GetArrayLength() > 0
            && factors.EnumerateArray().All(f => f.ValueKind == JsonValueKind.Number && double.IsFinite(f.GetDouble()) && f.GetDouble() > 0))
            return new PbtMutation(PbtMutationKind.Factors, [.. factors.EnumerateArray().Select(f => f.GetDouble())]);
        errors.Add(path, $"must be {{\"factors\": [positive numbers]}}, \"resample\" or \"keep\", got {e.GetRawText()}");
        return null;
    }

    private static string? Word(JsonElement e) => e.ValueKind == JsonValueKind.String ? e.GetString() : null;

    /// <summary>Writes the settings as the value of <c>"pbt"</c>, every setting spelled out (the seed is the group's <c>"seed"</c>).</summary>
    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber(IntervalKey, PerturbationInterval);
        w.WriteString(ResourceKey, Resource == PruningResource.Epochs ? "epochs" : "chunks");
        w.WriteNumber(QuantileKey, Quantile);
        w.WriteString(MetricKey, Metric);
        w.WriteString(ModeKey, Mode == MetricGoal.Max ? "max" : "min");
        w.WritePropertyName(MutationsKey);
        w.WriteStartObject();
        foreach (var (knob, mutation) in Mutations)
        {
            w.WritePropertyName(knob);
            switch (mutation.Kind)
            {
                case PbtMutationKind.Factors:
                    w.WriteStartObject();
                    w.WritePropertyName(FactorsKey);
                    w.WriteStartArray();
                    foreach (var f in mutation.Factors ?? []) w.WriteNumberValue(f);
                    w.WriteEndArray();
                    w.WriteEndObject();
                    break;
                default:
                    w.WriteStringValue(mutation.Kind == PbtMutationKind.Resample ? Resample : Keep);
                    break;
            }
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }
}

/// <summary>
/// Population Based Training (<c>"search": "pbt"</c>): the grid of <see cref="Template"/>'s List knobs is the initial
/// population, which <see cref="Settings"/> then steers by warm clones while it trains. The group expands to the
/// population; a range knob is an error, as in a grid, and so is a pruning rule (PBT does its own stopping).
/// </summary>
public sealed class PbtSearch(ConfigTemplate template, PbtSettings pbt) : ConfigGroup
{
    /// <summary>The template whose List knobs give the population.</summary>
    public ConfigTemplate Template { get; } = template ?? throw new ArgumentNullException(nameof(template));

    /// <summary>The settings as given (a resample's options not filled in).</summary>
    public PbtSettings Given { get; } = pbt ?? throw new ArgumentNullException(nameof(pbt));

    /// <summary>The settings the fit runs with: <see cref="Given"/> with each resample's options taken from the population (computed once).</summary>
    public PbtSettings Settings => settings ??= Given.ResolvedOver(ExpandValid().ToList());

    private PbtSettings? settings;

    /// <inheritdoc />
    public override PbtSettings? Pbt => Settings;

    internal override void Collect(ErrorSink errors)
    {
        var before = errors.Errors.Count;
        TemplateValidator.Validate(TemplateTree.Build(Template, errors), grid: true, errors);
        if (Pruning is not null) errors.Add(PruningRule.JsonKey, "cannot be combined with \"search\": \"pbt\", which stops and replaces runs itself");
        if (errors.Errors.Count == before) Given.Collect(errors.Under(PbtSettings.JsonKey), ExpandValid().ToList());
    }

    internal override IEnumerable<Config> ExpandValid() =>
        Expansion.Grid(TemplateTree.Build(Template, new ErrorSink())).Select(Expansion.ToConfig);

    internal override void Write(Utf8JsonWriter writer) => ConfigJson.WriteTemplate(writer, "pbt", Template, null, Pruning, w =>
    {
        w.WriteNumber("seed", Given.Seed);
        w.WritePropertyName(PbtSettings.JsonKey);
        Given.Write(w);
    });
}
