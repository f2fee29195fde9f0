using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace RapidFire.Spec;

/// <summary>
/// The knobs of one run (one leaf of a config group): the <c>cfg</c> every MLSpec method receives.
/// </summary>
/// <remarks>
/// User knobs sit at the top level beside the reserved keys <c>epochs</c>, <c>batch_size</c>, <c>optimizer</c>
/// (<c>{name, args}</c>), the optional <c>lr_scheduler</c> (<c>{name, args}</c>) and <c>named_metrics</c>.
/// Values are normalized to <see langword="null"/>, <see cref="bool"/>, <see cref="long"/>, <see cref="double"/>,
/// <see cref="string"/>, lists (<see cref="IReadOnlyList{T}"/> of values) and maps
/// (<see cref="IReadOnlyDictionary{TKey,TValue}"/> of values). A config is immutable, keeps its key order and
/// round-trips through <see cref="ToJson"/> / <see cref="FromJson"/> with its value types intact.
/// </remarks>
public sealed class Config : IReadOnlyDictionary<string, object?>, IEquatable<Config>
{
    /// <summary>Reserved key: the number of epochs (an upper bound when <c>HasConverged</c> is given).</summary>
    public const string EpochsKey = "epochs";
    /// <summary>Reserved key: the minibatch size.</summary>
    public const string BatchSizeKey = "batch_size";
    /// <summary>Reserved key: the optimizer, <c>{name, args}</c>.</summary>
    public const string OptimizerKey = "optimizer";
    /// <summary>Reserved key: the optional learning-rate scheduler, <c>{name, args}</c>.</summary>
    public const string LrSchedulerKey = "lr_scheduler";
    /// <summary>Reserved key: the named metrics, such as <c>top1_accuracy</c>.</summary>
    public const string NamedMetricsKey = "named_metrics";
    /// <summary>Reserved key, optional: the optimizer steps every this many minibatches (gradient accumulation).</summary>
    public const string AccumulateGradBatchesKey = "accumulate_grad_batches";
    /// <summary>Reserved key, optional: the total gradient norm is clipped to this before every optimizer step.</summary>
    public const string MaxGradNormKey = "max_grad_norm";

    /// <summary>The reserved keys, in the order they are printed.</summary>
    public static IReadOnlyList<string> ReservedKeys { get; } =
        [EpochsKey, BatchSizeKey, AccumulateGradBatchesKey, MaxGradNormKey, OptimizerKey, LrSchedulerKey, NamedMetricsKey];

    private readonly OrderedDictionary<string, object?> values;
    private readonly KnobReads? reads;
    private string? json;

    /// <summary>Creates a config from knob values; the values are normalized (see the remarks on the type).</summary>
    public Config(IEnumerable<KeyValuePair<string, object?>> knobs)
    {
        values = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in knobs)
            values[key] = ConfigValue.Normalize(value, key);
    }

    private Config(Config tracked, KnobReads reads)
    {
        values = tracked.values;
        json = tracked.json;
        this.reads = reads;
    }

    /// <summary>
    /// The same knobs, recording in <paramref name="reads"/> which of them are read: a top-level key for each knob
    /// asked for by name, every key for anything that sees the whole config (enumeration, JSON, equality). The
    /// runtime gives <c>RowPrep</c> and <c>InitializeRun</c> such a view to learn which knobs their output depends on.
    /// </summary>
    public Config Tracked(KnobReads reads)
    {
        ArgumentNullException.ThrowIfNull(reads);
        return new Config(this, reads);
    }

    private void Read(string key) => reads?.Record(key);

    private void ReadAll() => reads?.RecordAll();

    /// <summary>The number of epochs.</summary>
    public int Epochs => Get<int>(EpochsKey);

    /// <summary>The minibatch size.</summary>
    public int BatchSize => Get<int>(BatchSizeKey);

    /// <summary>Minibatches whose gradients add up to one optimizer step (1 when the config does not say).</summary>
    public int AccumulateGradBatches => TryGetValue(AccumulateGradBatchesKey, out var v) && v is not null ? Get<int>(AccumulateGradBatchesKey) : 1;

    /// <summary>The total gradient norm each step is clipped to; null when the config does not clip.</summary>
    public double? MaxGradNorm => TryGetValue(MaxGradNormKey, out var v) && v is not null ? Get<double>(MaxGradNormKey) : null;

    /// <summary>The optimizer, by TorchSharp name, with its arguments.</summary>
    public NamedComponent Optimizer => NamedComponent.From(this[OptimizerKey], OptimizerKey);

    /// <summary>The learning-rate scheduler, if one is configured.</summary>
    public NamedComponent? LrScheduler =>
        TryGetValue(LrSchedulerKey, out var v) && v is not null ? NamedComponent.From(v, LrSchedulerKey) : null;

    /// <summary>The named metrics (empty when none are configured).</summary>
    public IReadOnlyList<string> NamedMetrics =>
        TryGetValue(NamedMetricsKey, out var v) && v is IReadOnlyList<object?> list
            ? list.Select(m => m as string ?? throw new ConfigException(NamedMetricsKey, $"'{m}' is not a metric name")).ToList()
            : [];

    /// <summary>The user knobs: every key that is not reserved, in order.</summary>
    public IEnumerable<KeyValuePair<string, object?>> UserKnobs => this.Where(kv => !ReservedKeys.Contains(kv.Key));

    /// <summary>
    /// Every leaf knob with its dotted path (<c>optimizer.args.lr</c>), in order: nested maps are walked, lists are
    /// leaves. For tables that give each knob a column.
    /// </summary>
    public IEnumerable<KeyValuePair<string, object?>> Leaves() => LeavesOf("", this);

    private static IEnumerable<KeyValuePair<string, object?>> LeavesOf(string prefix, IEnumerable<KeyValuePair<string, object?>> map)
    {
        foreach (var (key, value) in map)
        {
            var path = prefix.Length == 0 ? key : $"{prefix}.{key}";
            if (value is IReadOnlyDictionary<string, object?> nested)
                foreach (var leaf in LeavesOf(path, nested)) yield return leaf;
            else yield return new(path, value);
        }
    }

    /// <summary>The value of a knob; an unknown knob is an error that lists the knobs there are.</summary>
    public object? this[string key] => TryGetValue(key, out var v)
        ? v
        : throw new KeyNotFoundException($"cfg has no knob '{key}'; its knobs are: {string.Join(", ", values.Keys)}");

    /// <summary>
    /// The value of a knob converted to <typeparamref name="T"/> (numbers convert when no information is lost).
    /// A missing knob or a value of the wrong type is an error that names the knob.
    /// </summary>
    public T Get<T>(string key) => ConfigValue.Convert<T>(this[key], key);

    /// <summary>The value of a knob converted to <typeparamref name="T"/>, or <paramref name="fallback"/> when absent.</summary>
    public T Get<T>(string key, T fallback) =>
        TryGetValue(key, out var v) && v is not null ? ConfigValue.Convert<T>(v, key) : fallback;

    /// <summary>A copy of this config with one top-level knob set (added at the end if new).</summary>
    public Config With(string key, object? value)
    {
        ReadAll();
        var copy = new OrderedDictionary<string, object?>(values, StringComparer.Ordinal) { [key] = value };
        return new Config(copy);
    }

    /// <summary>Compact JSON with the keys in order; a whole-number <see cref="double"/> keeps its <c>.0</c>.</summary>
    public string ToJson()
    {
        ReadAll();
        return json ??= ConfigValue.ToJson(values);
    }

    /// <summary>Reads a config written by <see cref="ToJson"/> (or any JSON object).</summary>
    public static Config FromJson(string text)
    {
        using var doc = JsonDocument.Parse(text);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ConfigException("", "a config must be a JSON object");
        return new Config(doc.RootElement.EnumerateObject()
            .Select(p => new KeyValuePair<string, object?>(p.Name, ConfigValue.FromJson(p.Value))));
    }

    /// <inheritdoc />
    public override string ToString() => ToJson();

    /// <inheritdoc />
    public bool Equals(Config? other) => other is not null && ToJson() == other.ToJson();

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as Config);

    /// <inheritdoc />
    public override int GetHashCode() => ToJson().GetHashCode(StringComparison.Ordinal);

    /// <inheritdoc />
    public int Count
    {
        get
        {
            ReadAll();
            return values.Count;
        }
    }

    /// <inheritdoc />
    public IEnumerable<string> Keys
    {
        get
        {
            ReadAll();
            return values.Keys;
        }
    }

    /// <inheritdoc />
    public IEnumerable<object?> Values
    {
        get
        {
            ReadAll();
            return values.Values;
        }
    }

    /// <inheritdoc />
    public bool ContainsKey(string key)
    {
        Read(key);
        return values.ContainsKey(key);
    }

    /// <inheritdoc />
    public bool TryGetValue(string key, out object? value)
    {
        Read(key);
        return values.TryGetValue(key, out value);
    }

    /// <inheritdoc />
    public IEnumerator<KeyValuePair<string, object?>> GetEnumerator()
    {
        ReadAll();
        return values.GetEnumerator();
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A component chosen by name with keyword arguments: an optimizer or a learning-rate scheduler.</summary>
public sealed record NamedComponent(string Name, IReadOnlyDictionary<string, object?> Args)
{
    internal static NamedComponent From(object? value, string key)
    {
        if (value is not IReadOnlyDictionary<string, object?> map)
            throw new ConfigException(key, "must be an object {\"name\": ..., \"args\": {...}}");
        if (!map.TryGetValue("name", out var name) || name is not string text || text.Length == 0)
            throw new ConfigException($"{key}.name", "is missing");
        var args = map.TryGetValue("args", out var a) && a is IReadOnlyDictionary<string, object?> d
            ? d
            : new Dictionary<string, object?>();
        return new NamedComponent(text, args);
    }
}

/// <summary>Normalization, conversion and JSON form of config values.</summary>
public static class ConfigValue
{
    /// <summary>
    /// Normalizes a knob value: integers become <see cref="long"/>, reals <see cref="double"/>, sequences
    /// read-only lists and string-keyed maps read-only ordered maps. Anything else is an error naming the path.
    /// </summary>
    public static object? Normalize(object? value, string path) => value switch
    {
        null => null,
        double d when !double.IsFinite(d) => throw new ConfigException(path, $"is {d.ToString(CultureInfo.InvariantCulture)}: a knob's number must be finite"),
        float f when !float.IsFinite(f) => throw new ConfigException(path, $"is {f.ToString(CultureInfo.InvariantCulture)}: a knob's number must be finite"),
        bool or long or double or string => value,
        int or short or sbyte or byte or ushort or uint => System.Convert.ToInt64(value, CultureInfo.InvariantCulture),
        float f => (double)(decimal)f, // 0.1f becomes 0.1, not 0.100000001490116
        decimal m => (double)m,
        JsonElement e => FromJson(e),
        IEnumerable<KeyValuePair<string, object?>> map => NormalizeMap(map, path),
        IDictionary dict => NormalizeMap(dict.Keys.Cast<object>().Select(k =>
            new KeyValuePair<string, object?>(k as string ?? throw new ConfigException(path, "map keys must be strings"), dict[k])), path),
        IEnumerable seq and not string => seq.Cast<object?>().Select((v, i) => Normalize(v, $"{path}[{i}]")).ToList().AsReadOnly(),
        _ => throw new ConfigException(path, $"a knob value must be a number, string, bool, list or map, not {value.GetType().Name}"),
    };

    private static IReadOnlyDictionary<string, object?> NormalizeMap(IEnumerable<KeyValuePair<string, object?>> map, string path)
    {
        var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (k, v) in map) result[k] = Normalize(v, path.Length == 0 ? k : $"{path}.{k}");
        return new System.Collections.ObjectModel.ReadOnlyDictionary<string, object?>(result);
    }

    /// <summary>Converts a normalized value to <typeparamref name="T"/>; the message names the knob.</summary>
    public static T Convert<T>(object? value, string path)
    {
        try
        {
            return value switch
            {
                T same => same,
                long l when typeof(T) == typeof(int) => (T)(object)checked((int)l),
                long l when typeof(T) == typeof(double) => (T)(object)(double)l,
                long l when typeof(T) == typeof(float) => (T)(object)(float)l,
                double d when typeof(T) == typeof(float) => (T)(object)(float)d,
                double d when typeof(T) == typeof(int) && d == Math.Floor(d) => (T)(object)checked((int)d),
                double d when typeof(T) == typeof(long) && d == Math.Floor(d) => (T)(object)checked((long)d),
                _ => throw new InvalidCastException(),
            };
        }
        catch (Exception e) when (e is InvalidCastException or OverflowException)
        {
            var shown = value is null ? "null" : $"{ToJson(value)} ({value.GetType().Name})";
            throw new ConfigException(path, $"expected {typeof(T).Name}, got {shown}");
        }
    }

    /// <summary>Reads a JSON value into its normalized form (a number with a fraction or exponent is a double).</summary>
    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) && !e.GetRawText().AsSpan().ContainsAny(".eE") ? (object)l : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList().AsReadOnly(),
        JsonValueKind.Object => NormalizeMap(e.EnumerateObject()
            .Select(p => new KeyValuePair<string, object?>(p.Name, FromJson(p.Value))), ""),
        _ => throw new ArgumentOutOfRangeException(nameof(e), e.ValueKind, null),
    };

    /// <summary>Compact JSON of a normalized value.</summary>
    public static string ToJson(object? value)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            Write(writer, value);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Write(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case bool b: w.WriteBooleanValue(b); break;
            case long l: w.WriteNumberValue(l); break;
            case double d when double.IsFinite(d):
                var text = d.ToString("R", CultureInfo.InvariantCulture);
                w.WriteRawValue(text.AsSpan().ContainsAny(".eE") ? text : text + ".0");
                break;
            case double d: w.WriteStringValue(d.ToString(CultureInfo.InvariantCulture)); break;
            case string s: w.WriteStringValue(s); break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                w.WriteStartObject();
                foreach (var (k, v) in map) { w.WritePropertyName(k); Write(w, v); }
                w.WriteEndObject();
                break;
            case IEnumerable seq:
                w.WriteStartArray();
                foreach (var v in seq) Write(w, v);
                w.WriteEndArray();
                break;
            default: throw new ArgumentException($"not a normalized config value: {value.GetType().Name}", nameof(value));
        }
    }
}
