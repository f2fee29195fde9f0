using System.Collections;

namespace RapidFire.Spec.Configs;

// The internal form of a template: every value is a node that knows its knob path. Builder templates and JSON
// documents both become this tree, so validation, expansion and writing JSON exist once.

internal abstract record Node(string Path);

/// <summary>A literal value, normalized by <see cref="ConfigValue.Normalize"/>.</summary>
internal sealed record LeafNode(string Path, object? Value) : Node(Path);

/// <summary>A map whose values may hold knobs; its order is the leaf's order.</summary>
internal sealed record MapNode(string Path, IReadOnlyList<KeyValuePair<string, Node>> Entries) : Node(Path)
{
    public Node? this[string key] => Entries.FirstOrDefault(e => e.Key == key).Value;
}

/// <summary>A literal sequence written in C# whose items may hold knobs.</summary>
internal sealed record SeqNode(string Path, IReadOnlyList<Node> Items) : Node(Path);

/// <summary>A <see cref="ListKnob"/>; each option has the path <c>knob[i]</c>.</summary>
internal sealed record ListNode(string Path, IReadOnlyList<Node> Options) : Node(Path);

/// <summary>A <see cref="RangeKnob"/>.</summary>
internal sealed record RangeNode(string Path, RangeKnob Knob) : Node(Path);

/// <summary>A value already reported as an error while reading JSON; validation passes over it silently.</summary>
internal sealed record InvalidNode(string Path) : Node(Path);

/// <summary>Knob paths as the JSON format spells them: <c>train.optimizer.args.lr</c>, <c>named_metrics[1]</c>.</summary>
internal static class KnobPath
{
    public static string Join(string prefix, string path) =>
        prefix.Length == 0 ? path
        : path.Length == 0 ? prefix
        : path[0] == '[' ? prefix + path
        : $"{prefix}.{path}";

    public static string Index(string path, int index) => $"{path}[{index}]";
}

/// <summary>Collects errors once each, in the order found, under a path prefix.</summary>
internal sealed class ErrorSink
{
    private readonly List<ConfigError> errors;
    private readonly HashSet<ConfigError> seen;
    private readonly string prefix;

    public ErrorSink() : this([], [], "") { }

    private ErrorSink(List<ConfigError> errors, HashSet<ConfigError> seen, string prefix) =>
        (this.errors, this.seen, this.prefix) = (errors, seen, prefix);

    public IReadOnlyList<ConfigError> Errors => errors;

    public void Add(string path, string message) => Add(new ConfigError(path, message));

    public void Add(ConfigError error)
    {
        var placed = error with { Path = KnobPath.Join(prefix, error.Path) };
        if (seen.Add(placed)) errors.Add(placed);
    }

    public ErrorSink Under(string path) => new(errors, seen, KnobPath.Join(prefix, path));
}

/// <summary>Turns a <see cref="ConfigTemplate"/> into a tree of nodes, reporting values that cannot be config values.</summary>
internal static class TemplateTree
{
    public const string UserKnobsKey = "user_knobs";
    public const string TrainKey = "train";

    public static MapNode Build(ConfigTemplate template, ErrorSink errors)
    {
        var userKnobs = new List<KeyValuePair<string, Node>>();
        foreach (var (name, value) in template.UserKnobs ?? new Dictionary<string, object?>())
        {
            var path = $"{UserKnobsKey}.{name}";
            if (Config.ReservedKeys.Contains(name))
                errors.Add(path, $"'{name}' is a reserved key, not a user knob; set it {WhereReserved(name)}");
            else if (string.IsNullOrWhiteSpace(name))
                errors.Add(UserKnobsKey, "a user knob needs a non-empty name");
            userKnobs.Add(new(name, FromValue(value, path, errors)));
        }

        var train = new List<KeyValuePair<string, Node>>();
        var t = template.Train ?? new TrainTemplate();
        Required(train, Config.EpochsKey, t.Epochs, "the number of epochs, a whole number >= 1", errors);
        Required(train, Config.BatchSizeKey, t.BatchSize, "the minibatch size, a whole number >= 1", errors);
        foreach (var (key, value) in new[] { (Config.AccumulateGradBatchesKey, t.AccumulateGradBatches), (Config.MaxGradNormKey, t.MaxGradNorm) })
            if (value is not null)
                train.Add(new(key, FromValue(value, $"{TrainKey}.{key}", errors)));
        Required(train, Config.OptimizerKey, t.Optimizer, "the optimizer, {\"name\": ..., \"args\": {...}}", errors);
        if (t.LrScheduler is not null)
            train.Add(new(Config.LrSchedulerKey, FromValue(t.LrScheduler, $"{TrainKey}.{Config.LrSchedulerKey}", errors)));

        var root = new List<KeyValuePair<string, Node>>
        {
            new(UserKnobsKey, new MapNode(UserKnobsKey, userKnobs)),
            new(TrainKey, new MapNode(TrainKey, train)),
        };
        if (template.NamedMetrics is not null)
            root.Add(new(Config.NamedMetricsKey,
                new LeafNode(Config.NamedMetricsKey, template.NamedMetrics.Cast<object?>().ToList().AsReadOnly())));
        return new MapNode("", root);
    }

    private static string WhereReserved(string name) => name == Config.NamedMetricsKey
        ? "at the top level, \"named_metrics\": [...]"
        : $"under \"train\": train.{name}";

    private static void Required(List<KeyValuePair<string, Node>> train, string key, object? value, string what, ErrorSink errors)
    {
        var path = $"{TrainKey}.{key}";
        if (value is null) errors.Add(path, $"is missing ({what})");
        else train.Add(new(key, FromValue(value, path, errors)));
    }

    public static Node FromValue(object? value, string path, ErrorSink errors)
    {
        switch (value)
        {
            case null: return new LeafNode(path, null);
            case Node node: return node with { Path = path };
            case ListKnob list:
                return new ListNode(path, (list.Values ?? []).Select((v, i) => FromValue(v, KnobPath.Index(path, i), errors)).ToList());
            case RangeKnob range: return new RangeNode(path, range);
            case ComponentTemplate c:
                return new MapNode(path,
                [
                    new("name", FromValue(c.Name, $"{path}.name", errors)),
                    new("args", FromMap(c.Args ?? new Dictionary<string, object?>(), $"{path}.args", errors)),
                ]);
            case string or bool or long or double: return new LeafNode(path, value);
            case IEnumerable<KeyValuePair<string, object?>> map: return FromMap(map, path, errors);
            case IDictionary dict:
                var pairs = new List<KeyValuePair<string, object?>>();
                foreach (DictionaryEntry e in dict)
                {
                    if (e.Key is string key) pairs.Add(new(key, e.Value));
                    else errors.Add(path, $"map keys must be strings, got {e.Key.GetType().Name}");
                }
                return FromMap(pairs, path, errors);
            case IEnumerable seq:
                return new SeqNode(path, seq.Cast<object?>().Select((v, i) => FromValue(v, KnobPath.Index(path, i), errors)).ToList());
            default:
                try
                {
                    return new LeafNode(path, ConfigValue.Normalize(value, path));
                }
                catch (ConfigException e)
                {
                    foreach (var error in e.Errors) errors.Add(error);
                    return new InvalidNode(path);
                }
        }
    }

    private static MapNode FromMap(IEnumerable<KeyValuePair<string, object?>> map, string path, ErrorSink errors) =>
        new(path, map.Select(kv => new KeyValuePair<string, Node>(kv.Key, FromValue(kv.Value, KnobPath.Join(path, kv.Key), errors))).ToList());

    /// <summary>Every node of the tree, parents first, in document order.</summary>
    public static IEnumerable<Node> Walk(Node node)
    {
        yield return node;
        var children = node switch
        {
            MapNode m => m.Entries.Select(e => e.Value),
            SeqNode s => s.Items,
            ListNode l => l.Options,
            _ => [],
        };
        foreach (var child in children)
            foreach (var n in Walk(child)) yield return n;
    }

    public static bool HasKnob(Node node) => Walk(node).Any(n => n is ListNode or RangeNode);
}
