using System.Text;
using System.Text.Json;

namespace RapidFire.Spec.Configs;

/// <summary>Reads and writes config groups in their JSON format (documented on <see cref="ConfigGroup.FromJson"/>).</summary>
internal static class ConfigJson
{
    private const string SearchKey = "search", SamplesKey = "samples", SeedKey = "seed", ConfigsKey = "configs";
    private const string RangeKey = "range", LogKey = "log", DtypeKey = "dtype", StepKey = "step", ValueKey = "value";
    private const string Grid = "grid", Random = "random", List = "list", Pbt = "pbt";

    private static readonly string[] TemplateKeys = [SearchKey, TemplateTree.UserKnobsKey, TemplateTree.TrainKey, Config.NamedMetricsKey];
    private static readonly string[] RandomKeys = [.. TemplateKeys, SamplesKey, SeedKey];
    private static readonly string[] ListKeys = [SearchKey, ConfigsKey];
    private static readonly string[] PbtKeys = [.. TemplateKeys, SeedKey, PbtSettings.JsonKey];
    private static readonly string[] TrainKeys =
        [Config.EpochsKey, Config.BatchSizeKey, Config.AccumulateGradBatchesKey, Config.MaxGradNormKey, Config.OptimizerKey, Config.LrSchedulerKey];
    private static readonly string[] RangeKeys = [RangeKey, LogKey, DtypeKey, StepKey];

    private static readonly JsonDocumentOptions Options = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Reads and validates a group; the format is documented on <see cref="ConfigGroup.FromJson"/>.</summary>
    public static ConfigGroup Read(string json, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, Options);
        }
        catch (JsonException e)
        {
            throw new ConfigException("",
                $"{sourceName} line {(e.LineNumber ?? 0) + 1}, position {(e.BytePositionInLine ?? 0) + 1}: malformed JSON: {Gist(e.Message)}");
        }
        using (doc)
        {
            var errors = new ErrorSink();
            var root = doc.RootElement;
            var group = ReadGroup(root, "", errors, sourceName);
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty(PruningRule.JsonKey, out var pruning))
                group = group.WithPruning(PruningRule.Read(pruning, PruningRule.JsonKey, errors));
            group.CollectGroup(errors);
            if (errors.Errors.Count > 0) throw new ConfigException(errors.Errors);
            return group;
        }
    }

    /// <summary>System.Text.Json's message without its trailing "Path: ... | LineNumber: ..." (we say it better).</summary>
    private static string Gist(string message)
    {
        var cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        return cut < 0 ? message : message[..cut];
    }

    private static ConfigGroup ReadGroup(JsonElement e, string path, ErrorSink errors, string sourceName)
    {
        if (e.ValueKind == JsonValueKind.Array) return ReadList(e, path, "", errors, sourceName);
        if (e.ValueKind != JsonValueKind.Object)
        {
            errors.Add(path, path.Length == 0
                ? $"{sourceName}: the document must be a config object or an array of them, got {Describe(e)}"
                : $"must be a config object, got {Describe(e)}");
            return new InvalidGroup();
        }

        var props = Properties(e, path, errors);
        var search = Grid;
        if (props.TryGetValue(SearchKey, out var s))
        {
            if (s.ValueKind == JsonValueKind.String && s.GetString() is Grid or Random or List or Pbt) search = s.GetString()!;
            else
            {
                errors.Add(KnobPath.Join(path, SearchKey), $"must be \"grid\", \"random\", \"list\" or \"pbt\", got {s.GetRawText()}");
                return new InvalidGroup();
            }
        }

        var allowed = search switch { Random => RandomKeys, List => ListKeys, Pbt => PbtKeys, _ => TemplateKeys };
        string[] expected = path.Length == 0 ? [.. allowed, PruningRule.JsonKey] : allowed;
        foreach (var key in props.Keys.Where(k => !allowed.Contains(k) && k != PruningRule.JsonKey))
            errors.Add(KnobPath.Join(path, key), UnknownTopLevelKey(key, search, expected));
        // the document's own pruning is read by Read; one rule judges all the runs of a fit, so none sits deeper
        if (path.Length > 0 && props.ContainsKey(PruningRule.JsonKey))
            errors.Add(KnobPath.Join(path, PruningRule.JsonKey), NestedPruning);

        if (search == List)
        {
            if (!props.TryGetValue(ConfigsKey, out var configs))
            {
                errors.Add(KnobPath.Join(path, ConfigsKey), "is missing: a config list needs an array of configs");
                return new InvalidGroup();
            }
            if (configs.ValueKind != JsonValueKind.Array)
            {
                errors.Add(KnobPath.Join(path, ConfigsKey), $"must be an array of config objects, got {Describe(configs)}");
                return new InvalidGroup();
            }
            return ReadList(configs, path, ConfigsKey, errors, sourceName);
        }

        var template = ReadTemplate(props, path, errors);
        if (search == Grid) return new GridSearch(template);
        if (search == Pbt)
        {
            if (path.Length > 0) errors.Add(KnobPath.Join(path, SearchKey), "\"pbt\" steers all the runs of a fit: it applies only to the whole group, at the top level");
            var pbtSeed = ReadInt(props, SeedKey, path, errors) ?? RandomSearch.DefaultSeed;
            if (!props.TryGetValue(PbtSettings.JsonKey, out var block))
            {
                errors.Add(KnobPath.Join(path, PbtSettings.JsonKey), "is missing: \"search\": \"pbt\" needs its settings, such as {\"perturbation_interval\": 1, " +
                    "\"quantile\": 0.25, \"metric\": \"top1_accuracy\", \"mode\": \"max\", \"mutations\": {\"optimizer.args.lr\": {\"factors\": [0.8, 1.2]}}}");
                return new InvalidGroup();
            }
            return PbtSettings.Read(block, KnobPath.Join(path, PbtSettings.JsonKey), pbtSeed, errors) is { } settings
                ? new PbtSearch(template, settings)
                : new InvalidGroup();
        }
        var samples = ReadInt(props, SamplesKey, path, errors) ?? 1;
        if (!props.ContainsKey(SamplesKey))
            errors.Add(KnobPath.Join(path, SamplesKey), "is missing: random search needs the number of configs to draw");
        var seed = ReadInt(props, SeedKey, path, errors) ?? RandomSearch.DefaultSeed;
        return new RandomSearch(template, samples, seed);
    }

    /// <summary>The fault of a pruning rule on a config inside a list, in JSON or in C#.</summary>
    internal const string NestedPruning = "applies only to the whole group, at the top level of the document (one rule " +
        "judges all the runs of a fit); to prune a list, write {\"search\": \"list\", \"configs\": [...], \"pruning\": {...}}";

    private static string UnknownTopLevelKey(string key, string search, string[] allowed) => key switch
    {
        SamplesKey => $"applies only to \"search\": \"random\" (this config is a {search} search)",
        SeedKey => $"applies only to \"search\": \"random\" or \"pbt\" (this config is a {search} search)",
        PbtSettings.JsonKey => "applies only to \"search\": \"pbt\"",
        ConfigsKey => "applies only to \"search\": \"list\"",
        _ when search == List && TemplateKeys.Contains(key) =>
            "a config list takes only \"configs\": put whole config objects inside it",
        _ when TrainKeys.Contains(key) => $"unknown top-level key; {key} belongs inside \"train\"",
        _ => $"unknown top-level key; expected one of: {string.Join(", ", allowed)}",
    };

    private static ConfigList ReadList(JsonElement array, string path, string itemPath, ErrorSink errors, string sourceName)
    {
        var items = array.EnumerateArray()
            .Select((item, i) => ReadGroup(item, KnobPath.Join(path, KnobPath.Index(itemPath, i)), errors, sourceName))
            .ToList();
        return new ConfigList(items, itemPath);
    }

    private static int? ReadInt(Dictionary<string, JsonElement> props, string key, string path, ErrorSink errors)
    {
        if (!props.TryGetValue(key, out var e)) return null;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var n)) return n;
        errors.Add(KnobPath.Join(path, key), $"must be a whole number, got {e.GetRawText()}");
        return null;
    }

    private static ConfigTemplate ReadTemplate(Dictionary<string, JsonElement> props, string path, ErrorSink errors)
    {
        var userKnobs = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        var userPath = KnobPath.Join(path, TemplateTree.UserKnobsKey);
        if (props.TryGetValue(TemplateTree.UserKnobsKey, out var user))
        {
            if (user.ValueKind == JsonValueKind.Object)
                foreach (var (name, value) in Properties(user, userPath, errors))
                    userKnobs[name] = ParseValue(value, $"{userPath}.{name}", errors, inList: false);
            else if (user.ValueKind != JsonValueKind.Null)
                errors.Add(userPath, $"must be an object of knobs by name, got {Describe(user)}");
        }

        var train = new TrainTemplate();
        var trainPath = KnobPath.Join(path, TemplateTree.TrainKey);
        if (props.TryGetValue(TemplateTree.TrainKey, out var t))
        {
            if (t.ValueKind != JsonValueKind.Object)
                errors.Add(trainPath, $"must be an object with epochs, batch_size, optimizer and lr_scheduler, got {Describe(t)}");
            else
            {
                var section = Properties(t, trainPath, errors);
                foreach (var key in section.Keys.Where(k => !TrainKeys.Contains(k)))
                    errors.Add($"{trainPath}.{key}", key == Config.NamedMetricsKey
                        ? "named_metrics belongs at the top level, not inside \"train\""
                        : $"unknown key in train; expected one of: {string.Join(", ", TrainKeys)} (user knobs go in \"user_knobs\")");
                object? Value(string key) => section.TryGetValue(key, out var v) ? ParseValue(v, $"{trainPath}.{key}", errors, inList: false) : null;
                train = new TrainTemplate
                {
                    Epochs = Value(Config.EpochsKey),
                    BatchSize = Value(Config.BatchSizeKey),
                    AccumulateGradBatches = Value(Config.AccumulateGradBatchesKey),
                    MaxGradNorm = Value(Config.MaxGradNormKey),
                    Optimizer = Value(Config.OptimizerKey),
                    LrScheduler = Value(Config.LrSchedulerKey),
                };
            }
        }

        IReadOnlyList<string>? metrics = null;
        if (props.TryGetValue(Config.NamedMetricsKey, out var m))
            metrics = ReadNamedMetrics(m, KnobPath.Join(path, Config.NamedMetricsKey), errors);

        return new ConfigTemplate { UserKnobs = userKnobs, Train = train, NamedMetrics = metrics };
    }

    private static IReadOnlyList<string>? ReadNamedMetrics(JsonElement e, string path, ErrorSink errors)
    {
        if (e.ValueKind == JsonValueKind.Null) return null;
        if (e.ValueKind == JsonValueKind.Object && e.EnumerateObject().Count() == 1 && e.TryGetProperty(ValueKey, out var inner))
            e = inner;
        if (e.ValueKind != JsonValueKind.Array)
        {
            errors.Add(path, $"must be an array of metric names, such as [\"top1_accuracy\"], got {Describe(e)}");
            return null;
        }
        var names = new List<string>();
        var i = 0;
        foreach (var item in e.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String) names.Add(item.GetString()!);
            else errors.Add(KnobPath.Index(path, i), $"must be a metric name (a string), got {item.GetRawText()}");
            i++;
        }
        return names.AsReadOnly();
    }

    /// <summary>A value that may be a knob: an array is a List, {"range": ...} a Range, {"value": ...} a literal.</summary>
    private static object? ParseValue(JsonElement e, string path, ErrorSink errors, bool inList)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Array when inList:
                return Literal(e, path, errors); // an array directly inside a List is one literal option
            case JsonValueKind.Array:
                return new ListKnob(e.EnumerateArray()
                    .Select((item, i) => ParseValue(item, KnobPath.Index(path, i), errors, inList: true)).ToList().AsReadOnly());
            case JsonValueKind.Object:
                var props = Properties(e, path, errors);
                if (props.ContainsKey(RangeKey)) return ParseRange(props, path, errors);
                if (props.TryGetValue(ValueKey, out var literal))
                {
                    if (props.Count == 1) return Literal(literal, path, errors);
                    errors.Add(path, $"{{\"value\": ...}} marks a literal and takes no other key (found: {string.Join(", ", props.Keys.Where(k => k != ValueKey))}); " +
                        "to write a map with a key named value, wrap it: {\"value\": {...}}");
                    return new InvalidNode(path);
                }
                var map = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, value) in props) map[key] = ParseValue(value, $"{path}.{key}", errors, inList: false);
                return map;
            default:
                return Literal(e, path, errors);
        }
    }

    /// <summary>A literal value, normalized; one the knobs cannot hold (a number too large to be finite) is an error at its path.</summary>
    private static object? Literal(JsonElement e, string path, ErrorSink errors)
    {
        try
        {
            return ConfigValue.Normalize(ConfigValue.FromJson(e), path);
        }
        catch (ConfigException invalid)
        {
            foreach (var error in invalid.Errors) errors.Add(error.Path, error.Message);
            return new InvalidNode(path);
        }
    }

    private static object ParseRange(Dictionary<string, JsonElement> props, string path, ErrorSink errors)
    {
        var count = errors.Errors.Count;
        foreach (var key in props.Keys.Where(k => !RangeKeys.Contains(k)))
            errors.Add($"{path}.{key}", $"unknown key in a range; expected: {string.Join(", ", RangeKeys)} " +
                "(to write a map with a key named range, wrap it: {\"value\": {...}})");

        var bounds = props[RangeKey];
        double start = 0, end = 0;
        if (bounds.ValueKind != JsonValueKind.Array || bounds.GetArrayLength() != 2
            || bounds[0].ValueKind != JsonValueKind.Number || bounds[1].ValueKind != JsonValueKind.Number)
            errors.Add($"{path}.{RangeKey}", $"must be [start, end], two numbers, got {bounds.GetRawText()}");
        else if (!double.IsFinite(bounds[0].GetDouble()) || !double.IsFinite(bounds[1].GetDouble()))
            errors.Add($"{path}.{RangeKey}", $"must be two finite numbers, got {bounds.GetRawText()}");
        else (start, end) = (bounds[0].GetDouble(), bounds[1].GetDouble());

        var log = false;
        if (props.TryGetValue(LogKey, out var l))
        {
            if (l.ValueKind is JsonValueKind.True or JsonValueKind.False) log = l.GetBoolean();
            else errors.Add($"{path}.{LogKey}", $"must be true or false, got {l.GetRawText()}");
        }

        var type = KnobType.Float;
        if (props.TryGetValue(DtypeKey, out var d))
        {
            if (d.ValueKind == JsonValueKind.String && d.GetString() == "int") type = KnobType.Int;
            else if (d.ValueKind != JsonValueKind.String || d.GetString() != "float")
                errors.Add($"{path}.{DtypeKey}", $"must be \"int\" or \"float\", got {d.GetRawText()}");
        }

        double? step = null;
        if (props.TryGetValue(StepKey, out var s))
        {
            if (s.ValueKind == JsonValueKind.Number) step = s.GetDouble();
            else errors.Add($"{path}.{StepKey}", $"must be a number > 0, got {s.GetRawText()}");
        }

        return errors.Errors.Count > count ? new InvalidNode(path) : new RangeKnob(start, end, log, step, type);
    }

    /// <summary>An object's properties in order; a key given twice is an error (the second would silently win).</summary>
    internal static Dictionary<string, JsonElement> Properties(JsonElement e, string path, ErrorSink errors)
    {
        var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
            if (!result.TryAdd(p.Name, p.Value))
                errors.Add(KnobPath.Join(path, p.Name), "is given twice");
        return result;
    }

    internal static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => $"the string {e.GetRawText()}",
        JsonValueKind.Number => $"the number {e.GetRawText()}",
        _ => e.GetRawText(),
    };

    // ---- writing ----

    public static string Write(ConfigGroup group)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions
        {
            Indented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }))
            group.Write(writer);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    public static void WriteTemplate(Utf8JsonWriter w, string search, ConfigTemplate template, RandomSearch? random,
        PruningRule? pruning, Action<Utf8JsonWriter>? more = null)
    {
        var errors = new ErrorSink();
        var root = TemplateTree.Build(template, errors);
        if (errors.Errors.Count > 0) throw new ConfigException(errors.Errors);

        w.WriteStartObject();
        w.WriteString(SearchKey, search);
        if (random is not null)
        {
            w.WriteNumber(SamplesKey, random.Samples);
            w.WriteNumber(SeedKey, random.Seed);
        }
        foreach (var (key, node) in root.Entries)
        {
            if (key == Config.NamedMetricsKey)
            {
                w.WritePropertyName(key);
                w.WriteRawValue(ConfigValue.ToJson(((LeafNode)node).Value)); // a plain array: named_metrics is literal
                continue;
            }
            var section = (MapNode)node;
            if (key == TemplateTree.UserKnobsKey && section.Entries.Count == 0) continue;
            w.WritePropertyName(key);
            w.WriteStartObject();
            foreach (var (name, value) in section.Entries)
            {
                w.WritePropertyName(name);
                WriteNode(w, value);
            }
            w.WriteEndObject();
        }
        WritePruning(w, pruning);
        more?.Invoke(w);
        w.WriteEndObject();
    }

    /// <summary>The <c>"pruning"</c> key of a config object, when the group has a rule.</summary>
    public static void WritePruning(Utf8JsonWriter w, PruningRule? pruning)
    {
        if (pruning is null) return;
        w.WritePropertyName(PruningRule.JsonKey);
        pruning.Write(w);
    }

    private static void WriteNode(Utf8JsonWriter w, Node node)
    {
        switch (node)
        {
            case LeafNode leaf:
                WriteLiteral(w, leaf.Value);
                break;
            case MapNode map when map.Entries.Any(e => e.Key is RangeKey or ValueKey):
                if (TemplateTree.HasKnob(map))
                    throw new ConfigException(map.Path, "a map with a key named \"range\" or \"value\" that holds knobs cannot be written as JSON");
                WriteLiteral(w, Expansion.Grid(map)[0]);
                break;
            case MapNode map:
                w.WriteStartObject();
                foreach (var (key, value) in map.Entries)
                {
                    w.WritePropertyName(key);
                    WriteNode(w, value);
                }
                w.WriteEndObject();
                break;
            case SeqNode seq:
                if (TemplateTree.HasKnob(seq))
                    throw new ConfigException(seq.Path, "a knob inside a literal list cannot be written as JSON; make the list a knob instead");
                WriteLiteral(w, Expansion.Grid(seq)[0]);
                break;
            case ListNode list:
                w.WriteStartArray();
                foreach (var option in list.Options)
                {
                    if (option is ListNode)
                        throw new ConfigException(option.Path, "a List directly inside a List cannot be written as JSON; merge their options");
                    WriteNode(w, option);
                }
                w.WriteEndArray();
                break;
            case RangeNode { Knob: var r }:
                w.WriteStartObject();
                w.WriteStartArray(RangeKey);
                if (r.Type == KnobType.Int)
                {
                    w.WriteNumberValue((long)r.Start);
                    w.WriteNumberValue((long)r.End);
                }
                else
                {
                    w.WriteRawValue(ConfigValue.ToJson(r.Start));
                    w.WriteRawValue(ConfigValue.ToJson(r.End));
                }
                w.WriteEndArray();
                w.WriteString(DtypeKey, r.Type == KnobType.Int ? "int" : "float");
                if (r.Log) w.WriteBoolean(LogKey, true);
                if (r.Step is { } step)
                {
                    w.WritePropertyName(StepKey);
                    if (r.Type == KnobType.Int) w.WriteNumberValue((long)step);
                    else w.WriteRawValue(ConfigValue.ToJson(step));
                }
                w.WriteEndObject();
                break;
            default:
                throw new ConfigException(node.Path, "cannot be written as JSON");
        }
    }

    /// <summary>A literal: lists, and maps with a key named range or value, are wrapped in {"value": ...}.</summary>
    private static void WriteLiteral(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case IReadOnlyDictionary<string, object?> map when !map.ContainsKey(RangeKey) && !map.ContainsKey(ValueKey):
                w.WriteStartObject();
                foreach (var (key, item) in map)
                {
                    w.WritePropertyName(key);
                    WriteLiteral(w, item);
                }
                w.WriteEndObject();
                break;
            case IReadOnlyDictionary<string, object?> or IReadOnlyList<object?>:
                w.WriteStartObject();
                w.WritePropertyName(ValueKey);
                w.WriteRawValue(ConfigValue.ToJson(value));
                w.WriteEndObject();
                break;
            default:
                w.WriteRawValue(ConfigValue.ToJson(value));
                break;
        }
    }
}

/// <summary>Stands in for a part of a JSON document already reported as an error, so later paths keep their indices.</summary>
internal sealed class InvalidGroup : ConfigGroup
{
    internal override void Collect(ErrorSink errors) { }

    internal override IEnumerable<Config> ExpandValid() => [];

    internal override void Write(Utf8JsonWriter writer) => throw new InvalidOperationException("an invalid group cannot be written");
}
