namespace RapidFire.Spec.Configs;

/// <summary>Whether a <see cref="RangeKnob"/> yields whole numbers or reals.</summary>
public enum KnobType
{
    /// <summary>Whole numbers (<see cref="long"/> in the config).</summary>
    Int,
    /// <summary>Real numbers (<see cref="double"/> in the config).</summary>
    Float,
}

/// <summary>
/// A knob whose value varies across the configs of a group: a <see cref="ListKnob"/> (a set of options) or a
/// <see cref="RangeKnob"/> (an interval that random search samples). A knob can stand anywhere a value can in a
/// <see cref="ConfigTemplate"/>: a user knob, <c>epochs</c>, <c>batch_size</c>, an optimizer argument or its
/// name, the learning-rate scheduler as a whole, or deep inside a map of user knobs.
/// </summary>
public abstract record Knob
{
    private protected Knob() { }

    /// <summary>
    /// A list of options. Grid search tries every option; random search picks one uniformly. An option may itself be
    /// a map (or a <see cref="ComponentTemplate"/>) holding further knobs. Because of <c>params</c>, a single
    /// array argument is spread into options: to offer one array as one option, pass it as <c>(object)array</c>.
    /// </summary>
    public static ListKnob List(params object?[] values) => new(values.ToList().AsReadOnly());

    /// <summary>
    /// A real interval [<paramref name="start"/>, <paramref name="end"/>] for random search, sampled uniformly or,
    /// when <paramref name="log"/> is set, log-uniformly (then <paramref name="start"/> must be &gt; 0). With a
    /// <paramref name="step"/>, values snap to <c>start + k*step</c> within the bounds.
    /// </summary>
    public static RangeKnob Range(double start, double end, bool log = false, double? step = null) =>
        new(start, end, log, step, KnobType.Float);

    /// <summary>
    /// A whole-number interval [<paramref name="start"/>, <paramref name="end"/>] (both included) for random search,
    /// sampled uniformly or, when <paramref name="log"/> is set, log-uniformly (then <paramref name="start"/> must be
    /// &gt;= 1). With a <paramref name="step"/>, values are <c>start + k*step</c> within the bounds.
    /// </summary>
    public static RangeKnob IntRange(long start, long end, bool log = false, long? step = null) =>
        new(start, end, log, step, KnobType.Int);
}

/// <summary>A knob with a list of options; see <see cref="Knob.List"/>.</summary>
/// <param name="Values">The options, in order. Grid search tries them in this order.</param>
public sealed record ListKnob(IReadOnlyList<object?> Values) : Knob;

/// <summary>An interval knob for random search; see <see cref="Knob.Range"/> and <see cref="Knob.IntRange"/>.</summary>
/// <param name="Start">The lower bound, included.</param>
/// <param name="End">The upper bound, included for <see cref="KnobType.Int"/> (and reachable with a step).</param>
/// <param name="Log">Sample log-uniformly instead of uniformly (requires <paramref name="Start"/> &gt; 0).</param>
/// <param name="Step">When given, values snap to <c>Start + k*Step</c> within the bounds; must be &gt; 0.</param>
/// <param name="Type">Whole numbers or reals.</param>
public sealed record RangeKnob(double Start, double End, bool Log, double? Step, KnobType Type) : Knob;
