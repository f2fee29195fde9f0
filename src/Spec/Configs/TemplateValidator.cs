using System.Globalization;
using RapidFire.Spec.Metrics;

namespace RapidFire.Spec.Configs;

/// <summary>Checks a node tree before anything is expanded: knobs, reserved keys, optimizer, scheduler, metrics.</summary>
internal static class TemplateValidator
{
    private static readonly string[] ComponentKeys = ["name", "args"];

    public static void Validate(MapNode root, bool grid, ErrorSink errors)
    {
        foreach (var node in TemplateTree.Walk(root))
        {
            if (node is ListNode { Options.Count: 0 })
                errors.Add(node.Path, "an empty List has no option to try");
            if (node is RangeNode range)
            {
                CheckRange(range, errors);
                if (grid)
                    errors.Add(node.Path, "a Range cannot be expanded by a grid search: use a List of values, or \"search\": \"random\"");
            }
        }

        if (root[TemplateTree.TrainKey] is MapNode train)
        {
            if (train[Config.EpochsKey] is { } epochs) CheckCount(epochs, Config.EpochsKey, errors);
            if (train[Config.BatchSizeKey] is { } batch) CheckCount(batch, Config.BatchSizeKey, errors);
            if (train[Config.AccumulateGradBatchesKey] is { } accumulate) CheckCount(accumulate, Config.AccumulateGradBatchesKey, errors);
            if (train[Config.MaxGradNormKey] is { } norm) CheckPositive(norm, Config.MaxGradNormKey, errors);
            if (train[Config.OptimizerKey] is { } optimizer)
                CheckComponent(optimizer, "an optimizer", allowNone: false, Optimizers.Validate, errors);
            if (train[Config.LrSchedulerKey] is { } scheduler)
                CheckComponent(scheduler, "a learning-rate scheduler", allowNone: true, LrSchedulers.Validate, errors);
        }
        if (root[Config.NamedMetricsKey] is LeafNode { Value: IReadOnlyList<object?> metrics })
            CheckNamedMetrics(metrics, errors);
    }

    private static void CheckRange(RangeNode node, ErrorSink errors)
    {
        var (r, path) = (node.Knob, node.Path);
        if (!double.IsFinite(r.Start) || !double.IsFinite(r.End))
        {
            errors.Add(path, $"a Range needs finite bounds, got [{Show(r.Start)}, {Show(r.End)}]");
            return;
        }
        if (r.Start > r.End)
            errors.Add(path, $"the Range starts at {Show(r.Start)} but ends at {Show(r.End)}: start must be <= end");
        if (r.Log && r.Start <= 0)
            errors.Add(path, $"a log Range must start above 0, got start {Show(r.Start)}");
        if (r.Type == KnobType.Int && (r.Start != Math.Floor(r.Start) || r.End != Math.Floor(r.End)))
            errors.Add(path, $"an int Range needs whole-number bounds, got [{Show(r.Start)}, {Show(r.End)}]");
        if (r.Step is { } step)
        {
            if (!double.IsFinite(step) || step <= 0)
                errors.Add($"{path}.step", $"must be > 0, got {Show(step)}");
            else if (r.Type == KnobType.Int && step != Math.Floor(step))
                errors.Add($"{path}.step", $"an int Range needs a whole-number step, got {Show(step)}");
        }
    }

    /// <summary>epochs and batch_size: whole numbers >= 1, wherever they come from.</summary>
    private static void CheckCount(Node node, string key, ErrorSink errors)
    {
        switch (node)
        {
            case ListNode list:
                foreach (var option in list.Options) CheckCount(option, key, errors);
                break;
            case RangeNode { Knob: var r }:
                if (r.Type != KnobType.Int)
                    errors.Add(node.Path, $"a Range for {key} must have dtype int (it draws whole numbers)");
                else if (double.IsFinite(r.Start) && r.Start < 1)
                    errors.Add(node.Path, $"must be a whole number >= 1, but the Range starts at {Show(r.Start)}");
                break;
            case LeafNode { Value: long n } when n >= 1:
            case LeafNode { Value: double d } when d >= 1 && d == Math.Floor(d) && d <= int.MaxValue:
            case InvalidNode:
                break;
            case LeafNode leaf:
                errors.Add(node.Path, $"must be a whole number >= 1, got {ConfigValue.ToJson(leaf.Value)}");
                break;
            default:
                errors.Add(node.Path, "must be a whole number >= 1, not a map or list");
                break;
        }
    }

    /// <summary>max_grad_norm: a finite number &gt; 0, wherever it comes from.</summary>
    private static void CheckPositive(Node node, string key, ErrorSink errors)
    {
        switch (node)
        {
            case ListNode list:
                foreach (var option in list.Options) CheckPositive(option, key, errors);
                break;
            case RangeNode { Knob: var r }:
                if (double.IsFinite(r.Start) && r.Start <= 0)
                    errors.Add(node.Path, $"must be a number > 0, but the Range starts at {Show(r.Start)}");
                break;
            case LeafNode { Value: long n } when n > 0:
            case LeafNode { Value: double d } when double.IsFinite(d) && d > 0:
            case InvalidNode:
                break;
            case LeafNode leaf:
                errors.Add(node.Path, $"must be a number > 0 (the total gradient norm to clip to), got {ConfigValue.ToJson(leaf.Value)}");
                break;
            default:
                errors.Add(node.Path, $"must be a number > 0 for {key}, not a map or list");
                break;
        }
    }

    /// <summary>An optimizer or scheduler: each possible {name, args} is checked against TorchSharp.</summary>
    private static void CheckComponent(Node node, string what, bool allowNone,
        Func<NamedComponent, string, IReadOnlyList<ConfigError>> validate, ErrorSink errors)
    {
        switch (node)
        {
            case InvalidNode: return;
            case ListNode list:
                // Each option of a whole-component List is reported at its own path, train.optimizer[i].
                foreach (var option in list.Options) CheckComponent(option, what, allowNone, validate, errors);
                return;
            case LeafNode { Value: null }:
                if (!allowNone) errors.Add(node.Path, $"is missing ({what}, {{\"name\": ..., \"args\": {{...}}}})");
                return;
        }

        foreach (var value in Expansion.Coverage(node))
        {
            if (value is not IReadOnlyDictionary<string, object?> map)
            {
                errors.Add(node.Path, $"must be {what} as an object {{\"name\": ..., \"args\": {{...}}}}, got {ConfigValue.ToJson(value)}");
                continue;
            }
            var shapeOk = true;
            foreach (var key in map.Keys.Where(k => !ComponentKeys.Contains(k)))
            {
                errors.Add($"{node.Path}.{key}", $"unknown key; {what} takes only \"name\" and \"args\"");
                shapeOk = false;
            }
            if (!map.TryGetValue("name", out var name) || name is null)
            {
                errors.Add($"{node.Path}.name", "is missing");
                continue;
            }
            if (name is not string text || text.Length == 0)
            {
                errors.Add($"{node.Path}.name", $"must be a non-empty string, got {ConfigValue.ToJson(name)}");
                continue;
            }
            var args = map.GetValueOrDefault("args");
            if (args is not null and not IReadOnlyDictionary<string, object?>)
            {
                errors.Add($"{node.Path}.args", $"must be an object of arguments by name, got {ConfigValue.ToJson(args)}");
                continue;
            }
            if (!shapeOk) continue;
            var component = new NamedComponent(text, args as IReadOnlyDictionary<string, object?> ?? new Dictionary<string, object?>());
            foreach (var error in validate(component, node.Path)) errors.Add(error);
        }
    }

    private static void CheckNamedMetrics(IReadOnlyList<object?> metrics, ErrorSink errors)
    {
        var seen = new Dictionary<string, int>();
        for (var i = 0; i < metrics.Count; i++)
        {
            var path = KnobPath.Index(Config.NamedMetricsKey, i);
            if (metrics[i] is not string name)
                errors.Add(path, $"must be a metric name (a string), got {ConfigValue.ToJson(metrics[i])}");
            else if (!NamedMetric.TryParse(name, out var metric))
                errors.Add(path, $"unknown named metric '{name}': expected {NamedMetric.KnownNames}");
            else if (!seen.TryAdd(metric.Name, i))
                errors.Add(path, $"{metric.Name} is already listed at {KnobPath.Index(Config.NamedMetricsKey, seen[metric.Name])}");
        }
    }

    private static string Show(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
