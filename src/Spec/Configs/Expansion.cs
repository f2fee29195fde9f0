namespace RapidFire.Spec.Configs;

/// <summary>Turns a validated node tree into concrete values: by grid, by sampling, or a small covering set.</summary>
internal static class Expansion
{
    /// <summary>Every combination of the List knobs; the first knob in document order varies slowest.</summary>
    public static IReadOnlyList<object?> Grid(Node node) => node switch
    {
        LeafNode leaf => [leaf.Value],
        MapNode map => Product(map.Entries.Select(e => Grid(e.Value)).ToList())
            .Select(values => (object?)ToMap(map, values)).ToList(),
        SeqNode seq => Product(seq.Items.Select(Grid).ToList()).Select(values => (object?)values.ToList().AsReadOnly()).ToList(),
        ListNode list => list.Options.SelectMany(Grid).ToList(),
        _ => throw new InvalidOperationException($"{node.Path}: {node.GetType().Name} cannot be expanded by a grid"),
    };

    /// <summary>One random draw: each List picks an option uniformly, each Range draws a value; document order.</summary>
    public static object? Sample(Node node, Random random) => node switch
    {
        LeafNode leaf => leaf.Value,
        MapNode map => ToMap(map, map.Entries.Select(e => Sample(e.Value, random)).ToArray()),
        SeqNode seq => seq.Items.Select(item => Sample(item, random)).ToList().AsReadOnly(),
        ListNode list => Sample(list.Options[random.Next(list.Options.Count)], random),
        RangeNode range => RangeSampler.Sample(range.Knob, random),
        _ => throw new InvalidOperationException($"{node.Path}: {node.GetType().Name} cannot be sampled"),
    };

    /// <summary>
    /// A few values in which every option of every knob (and both ends of every Range) appears at least once:
    /// the first option everywhere, then one knob changed at a time. Validation checks these instead of the whole
    /// product, so its cost grows with the number of options, not with their product.
    /// </summary>
    public static IReadOnlyList<object?> Coverage(Node node)
    {
        switch (node)
        {
            case LeafNode leaf: return [leaf.Value];
            case ListNode list: return list.Options.SelectMany(Coverage).ToList();
            case RangeNode { Knob: var r }:
                return r.Type == KnobType.Int ? [(long)r.Start, (long)r.End] : [r.Start, r.End];
            case MapNode or SeqNode:
                var children = node is MapNode m ? m.Entries.Select(e => e.Value).ToList() : ((SeqNode)node).Items.ToList();
                var options = children.Select(Coverage).ToList();
                if (options.Any(o => o.Count == 0)) return [];
                var result = new List<object?>();
                var first = options.Select(o => o[0]).ToArray();
                result.Add(Build(node, first));
                for (var i = 0; i < options.Count; i++)
                    for (var j = 1; j < options[i].Count; j++)
                    {
                        var values = (object?[])first.Clone();
                        values[i] = options[i][j];
                        result.Add(Build(node, values));
                    }
                return result;
            default: return [];
        }

        static object Build(Node node, object?[] values) =>
            node is MapNode map ? ToMap(map, values) : values.ToList().AsReadOnly();
    }

    private static IReadOnlyDictionary<string, object?> ToMap(MapNode map, IReadOnlyList<object?> values)
    {
        var result = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        for (var i = 0; i < map.Entries.Count; i++) result[map.Entries[i].Key] = values[i];
        return result;
    }

    /// <summary>The cartesian product, the first dimension varying slowest.</summary>
    private static IEnumerable<object?[]> Product(IReadOnlyList<IReadOnlyList<object?>> dimensions)
    {
        if (dimensions.Any(d => d.Count == 0)) yield break;
        var index = new int[dimensions.Count];
        while (true)
        {
            yield return dimensions.Select((d, i) => d[index[i]]).ToArray();
            var k = dimensions.Count - 1;
            while (k >= 0 && ++index[k] == dimensions[k].Count) index[k--] = 0;
            if (k < 0) yield break;
        }
    }

    /// <summary>
    /// A leaf <see cref="Config"/> from one expanded root value: user knobs in order, then epochs, batch_size,
    /// optimizer <c>{name, args}</c>, lr_scheduler (when not null) and named_metrics (when given).
    /// </summary>
    public static Config ToConfig(object? root)
    {
        var doc = (IReadOnlyDictionary<string, object?>)root!;
        var knobs = new List<KeyValuePair<string, object?>>();
        if (doc[TemplateTree.UserKnobsKey] is IReadOnlyDictionary<string, object?> user) knobs.AddRange(user);
        var train = (IReadOnlyDictionary<string, object?>)doc[TemplateTree.TrainKey]!;
        knobs.Add(new(Config.EpochsKey, WholeNumber(train[Config.EpochsKey])));
        knobs.Add(new(Config.BatchSizeKey, WholeNumber(train[Config.BatchSizeKey])));
        if (train.TryGetValue(Config.AccumulateGradBatchesKey, out var accumulate) && accumulate is not null)
            knobs.Add(new(Config.AccumulateGradBatchesKey, WholeNumber(accumulate)));
        if (train.TryGetValue(Config.MaxGradNormKey, out var norm) && norm is not null)
            knobs.Add(new(Config.MaxGradNormKey, norm));
        knobs.Add(new(Config.OptimizerKey, Component(train[Config.OptimizerKey])));
        if (train.TryGetValue(Config.LrSchedulerKey, out var scheduler) && scheduler is not null)
            knobs.Add(new(Config.LrSchedulerKey, Component(scheduler)));
        if (doc.TryGetValue(Config.NamedMetricsKey, out var metrics) && metrics is not null)
            knobs.Add(new(Config.NamedMetricsKey, metrics));
        return new Config(knobs);
    }

    private static object? WholeNumber(object? value) => value is double d ? (long)d : value;

    private static IReadOnlyDictionary<string, object?> Component(object? value)
    {
        var map = (IReadOnlyDictionary<string, object?>)value!;
        return new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["name"] = map["name"],
            ["args"] = map.TryGetValue("args", out var args) && args is not null ? args : new Dictionary<string, object?>(),
        };
    }
}

/// <summary>Draws a value from a <see cref="RangeKnob"/>.</summary>
internal static class RangeSampler
{
    public static object Sample(RangeKnob r, Random random)
    {
        if (r.Type == KnobType.Int)
        {
            long lo = (long)r.Start, hi = (long)r.End;
            if (r.Step is { } s)
            {
                var step = (long)s;
                var last = (hi - lo) / step; // k in [0, last] keeps lo + k*step within the bounds
                var k = r.Log
                    ? Math.Clamp((long)Math.Round((LogUniform(lo, hi, random) - lo) / step), 0, last)
                    : random.NextInt64(0, last + 1);
                return lo + k * step;
            }
            if (!r.Log) return random.NextInt64(lo, hi + 1);
            // floor of a log-uniform draw over [lo, hi + 1): each whole number k gets log((k+1)/k) / log((hi+1)/lo)
            return Math.Clamp((long)Math.Floor(LogUniform(lo, hi + 1, random)), lo, hi);
        }

        if (r.Step is { } fstep)
        {
            var last = (long)Math.Floor((r.End - r.Start) / fstep * (1 + 1e-12));
            var k = r.Log
                ? Math.Clamp((long)Math.Round((LogUniform(r.Start, r.End, random) - r.Start) / fstep), 0, last)
                : random.NextInt64(0, last + 1);
            return Snap(r.Start, k, fstep);
        }
        return r.Log ? LogUniform(r.Start, r.End, random) : r.Start + random.NextDouble() * (r.End - r.Start);
    }

    private static double LogUniform(double lo, double hi, Random random) =>
        Math.Clamp(Math.Exp(Math.Log(lo) + random.NextDouble() * (Math.Log(hi) - Math.Log(lo))), lo, hi);

    /// <summary><c>start + k*step</c> in decimal arithmetic, so that 0.1 + 2*0.1 is 0.3, not 0.30000000000000004.</summary>
    private static double Snap(double start, long k, double step)
    {
        try
        {
            return (double)((decimal)start + k * (decimal)step);
        }
        catch (OverflowException)
        {
            return start + k * step;
        }
    }
}
