using System.Globalization;
using System.Text.Json;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using RapidFire.Spec.Configs;

namespace RapidFire.Actors.Control;

/// <summary>
/// Which IC operations a run accepts, and the knobs of a clone: plain functions of the run's state and the operations
/// already waiting for its next chunk boundary.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>stop: a run that is new or ongoing;</item>
/// <item>resume: a stopped run;</item>
/// <item>delete: any run that has not completed and is not deleted;</item>
/// <item>clone: likewise; a warm clone also needs a parent that has not failed, the same <c>batch_size</c>, <c>seed</c>
/// and optimizer, and (checked with the model itself, see <c>WarmStartCheck</c>) the same architecture.</item>
/// </list>
/// Operations already waiting count as done: a second stop of a run whose stop waits is refused.
/// </remarks>
public static class ControlRules
{
    /// <summary>Why <paramref name="op"/> is refused for <paramref name="run"/> (null: unknown run); null when it is accepted.</summary>
    /// <param name="op">The operation.</param>
    /// <param name="run">The run's latest state, or null when the fit has no such run.</param>
    /// <param name="pending">The operations on the run waiting for its next chunk boundary, in order.</param>
    /// <param name="knownRuns">The fit's run ids, for the message about an unknown one.</param>
    public static string? Refusal(ControlOp op, RunState? run, IReadOnlyList<ControlOp> pending, IReadOnlyCollection<int> knownRuns)
    {
        if (run is null)
            return $"there is no run {op.RunId} in this fit (its runs are {string.Join(", ", knownRuns.Order())})";
        var status = pending.Aggregate(run.Status, StatusAfter);
        var id = op.RunId;
        if (status == RunStatus.Completed)
            return $"run {id} has completed ({run.EndedBy}): {op.Name} applies only to runs that have not completed";
        if (status == RunStatus.Deleted)
            return $"run {id} {(run.Status == RunStatus.Deleted ? "was" : "is being")} deleted: {op.Name} applies only to runs that are not deleted";
        return op.Kind switch
        {
            ControlKind.Stop when status == RunStatus.Stopped => $"run {id} is already stopped{(run.Status == RunStatus.Stopped ? "" : " (its stop waits for its chunk to end)")}",
            ControlKind.Stop when status == RunStatus.Failed => $"run {id} has failed ({run.Failure}): it is not training",
            ControlKind.Resume when status != RunStatus.Stopped => $"run {id} is {Describe(status)}, not stopped: only a stopped run can be resumed",
            ControlKind.Clone when op.Warm && status == RunStatus.Failed =>
                $"run {id} has failed ({run.Failure}): its trained state is not trusted; clone it without a warm start",
            _ => null,
        };
    }

    private static RunStatus StatusAfter(RunStatus status, ControlOp op) => op.Kind switch
    {
        ControlKind.Stop => RunStatus.Stopped,
        ControlKind.Resume => RunStatus.Ongoing,
        ControlKind.Delete => RunStatus.Deleted,
        _ => status,
    };

    private static string Describe(RunStatus status) => status switch
    {
        RunStatus.New => "starting",
        var s => s.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// The knobs of a clone of <paramref name="parent"/>: its knobs with <paramref name="changes"/> applied (see
    /// <see cref="ControlOp"/> for the paths and values). An unknown knob, a value of the wrong kind, or an optimizer or
    /// scheduler that cannot be built is a <see cref="ConfigException"/> listing every fault at its knob path.
    /// </summary>
    public static Config CloneConfig(Config parent, IReadOnlyDictionary<string, string> changes)
    {
        var errors = new List<ConfigError>();
        var root = Mutable(parent);
        foreach (var (rawPath, text) in changes)
        {
            var path = Canonical(rawPath);
            if (path.Length == 0 || path.Split('.').Any(p => p.Length == 0))
            {
                errors.Add(new ConfigError(rawPath, "is not a knob path (such as optimizer.args.lr or hidden)"));
                continue;
            }
            var parts = path.Split('.');
            var map = root;
            var ok = true;
            for (var i = 0; i < parts.Length - 1 && ok; i++)
            {
                if (map.TryGetValue(parts[i], out var inner) && inner is Dictionary<string, object?> next) map = next;
                else ok = false;
            }
            var leaf = parts[^1];
            var isArg = parts.Length >= 2 && parts[^2] == "args"; // a new optimizer or scheduler argument may be added
            if (!ok || (!map.ContainsKey(leaf) && !isArg) || map.GetValueOrDefault(leaf) is Dictionary<string, object?>)
            {
                errors.Add(new ConfigError(rawPath, $"the run has no knob '{path}'; its knobs are: {string.Join(", ", parent.Leaves().Select(kv => kv.Key))}"));
                continue;
            }
            try
            {
                var value = ConfigValue.Normalize(Parse(text), path);
                if (map.TryGetValue(leaf, out var old) && old is not null && value is not null && Kind(old) != Kind(value))
                    throw new ConfigException(rawPath, $"is {Kind(old)} in the run ({ConfigValue.ToJson(SecretMask.Mask(path, old))}); got {Kind(value)} {ConfigValue.ToJson(SecretMask.Mask(path, value))}");
                map[leaf] = value;
            }
            catch (ConfigException e)
            {
                errors.AddRange(e.Errors);
            }
        }
        if (errors.Count > 0) throw new ConfigException(errors);

        var clone = new Config(root);
        errors.AddRange(Check(clone));
        if (errors.Count > 0) throw new ConfigException(errors);
        return clone;
    }

    /// <summary>
    /// Why a warm clone with <paramref name="clone"/>'s knobs cannot continue from <paramref name="parent"/>'s trained
    /// state, judged by the knobs alone (the architecture is checked with the model itself); null when it can.
    /// </summary>
    public static string? WarmRefusal(int parentId, Config parent, Config clone)
    {
        object? Of(Config cfg, string knob) => cfg.TryGetValue(knob, out var value) ? value : null;
        string Changed(string knob) => $"{knob} ({Show(Of(parent, knob))} → {Show(Of(clone, knob))})";
        if (parent.BatchSize != clone.BatchSize)
            return $"a warm clone continues run {parentId}'s epoch from its next chunk, and {Changed(Config.BatchSizeKey)} " +
                   "cuts the epoch into other minibatches; keep batch_size or clone without a warm start";
        if (Show(Of(parent, "seed")) != Show(Of(clone, "seed")))
            return $"a warm clone continues run {parentId}'s epoch in the same row order, and {Changed("seed")} changes that order; " +
                   "keep seed or clone without a warm start";
        if (parent.Optimizer.Name != clone.Optimizer.Name)
            return $"a warm start copies run {parentId}'s {parent.Optimizer.Name} optimizer state, which {clone.Optimizer.Name} cannot take; " +
                   "keep the optimizer (its arguments may change) or clone without a warm start";
        return null;
    }

    /// <summary>The faults of a clone's knobs that would only show when its model is built.</summary>
    private static IEnumerable<ConfigError> Check(Config cfg)
    {
        var errors = new List<ConfigError>();
        foreach (var key in new[] { Config.EpochsKey, Config.BatchSizeKey })
        {
            try
            {
                if (cfg.Get<long>(key) < 1) errors.Add(new ConfigError(key, $"must be at least 1, got {cfg[key]}"));
            }
            catch (Exception e) when (e is ConfigException or KeyNotFoundException)
            {
                errors.Add(new ConfigError(key, e.Message));
            }
        }
        try
        {
            if (cfg.ContainsKey(Config.AccumulateGradBatchesKey) && cfg.AccumulateGradBatches < 1)
                errors.Add(new ConfigError(Config.AccumulateGradBatchesKey, $"must be at least 1, got {cfg[Config.AccumulateGradBatchesKey]}"));
            if (cfg.MaxGradNorm is { } norm && !(double.IsFinite(norm) && norm > 0))
                errors.Add(new ConfigError(Config.MaxGradNormKey, $"must be a number > 0, got {cfg[Config.MaxGradNormKey]}"));
        }
        catch (ConfigException e)
        {
            errors.AddRange(e.Errors);
        }
        try
        {
            errors.AddRange(Optimizers.Validate(cfg.Optimizer, Config.OptimizerKey));
            if (cfg.LrScheduler is { } scheduler) errors.AddRange(LrSchedulers.Validate(scheduler, Config.LrSchedulerKey));
        }
        catch (ConfigException e)
        {
            errors.AddRange(e.Errors);
        }
        return errors;
    }

    /// <summary><c>optimizer.lr</c>, as tables show it, is <c>optimizer.args.lr</c>.</summary>
    private static string Canonical(string path)
    {
        var parts = path.Trim().Split('.');
        return parts.Length == 2 && parts[0] is Config.OptimizerKey or Config.LrSchedulerKey && parts[1] is not ("name" or "args")
            ? $"{parts[0]}.args.{parts[1]}"
            : path.Trim();
    }

    /// <summary>A value as JSON (<c>0.01</c>, <c>true</c>, <c>"cnn"</c>, <c>[64, 32]</c>); text that is not JSON is a string.</summary>
    private static object? Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return ConfigValue.FromJson(doc.RootElement);
        }
        catch (JsonException)
        {
            return text;
        }
    }

    private static string Kind(object value) => value switch
    {
        long or double => "a number",
        string => "a string",
        bool => "a boolean",
        IReadOnlyDictionary<string, object?> => "a map",
        _ => "a list",
    };

    private static Dictionary<string, object?> Mutable(IEnumerable<KeyValuePair<string, object?>> map) =>
        map.ToDictionary(kv => kv.Key, kv => kv.Value is IReadOnlyDictionary<string, object?> nested ? Mutable(nested) : kv.Value, StringComparer.Ordinal);

    private static string Show(object? value) => value is null ? "none" : ConfigValue.ToJson(value);
}
