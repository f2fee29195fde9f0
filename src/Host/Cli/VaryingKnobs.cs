namespace RapidFire.Host.Cli;

/// <summary>
/// The knobs worth showing beside runs (a table's columns, a chart's legend): those whose values differ between the
/// runs, or that some runs lack; named as the fit's table names them, <c>optimizer.lr</c> rather than <c>optimizer.args.lr</c>.
/// </summary>
public static class VaryingKnobs
{
    /// <summary>The knobs, by name, whose values differ between <paramref name="knobsPerRun"/> (or that some runs lack), in first-seen order.</summary>
    public static List<string> Of(IReadOnlyList<IReadOnlyDictionary<string, string>> knobsPerRun) =>
        knobsPerRun.SelectMany(k => k).GroupBy(kv => kv.Key)
            .Where(g => g.Select(kv => kv.Value).Distinct().Count() > 1 || g.Count() < knobsPerRun.Count)
            .Select(g => g.Key).ToList();

    /// <summary>A knob's display name: <c>optimizer.lr</c> rather than <c>optimizer.args.lr</c>.</summary>
    public static string Display(string knob) => knob.Replace(".args.", ".", StringComparison.Ordinal);
}
