using System.Globalization;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using RapidFire.Spec.Configs;

namespace RapidFire.Actors.Scheduling;

/// <summary>One exploit of Population Based Training: a run stopped, and the warm clone that replaces it.</summary>
/// <param name="Replaced">The run stopped (its <c>ended_by</c> is <see cref="PbtSettings.EndedBy"/>).</param>
/// <param name="Parent">The run of the top quantile whose warm clone replaces it.</param>
/// <param name="Changes">The clone's mutated knobs, as an IC clone's changes: dotted path to JSON value.</param>
/// <param name="Reason">One line: the point, both runs' metric, the quantile and the changes (the IC log's note).</param>
public sealed record PbtExploit(int Replaced, int Parent, IReadOnlyDictionary<string, string> Changes, string Reason);

/// <summary>What Population Based Training decided on one snapshot of a fit's runs.</summary>
/// <param name="Point">The exploit point decided now (epochs or chunks trained), or null when none is ready.</param>
/// <param name="Exploits">The exploits at <paramref name="Point"/>, in rank order of the runs replaced (worst first).</param>
/// <param name="Held">Runs that stand at the next point and wait there for the rest of the population.</param>
public sealed record PbtDecision(int? Point, IReadOnlyList<PbtExploit> Exploits, IReadOnlySet<int> Held)
{
    /// <summary>Nothing to do.</summary>
    public static PbtDecision None { get; } = new(null, [], new HashSet<int>());
}

/// <summary>
/// Population Based Training (<see cref="PbtSettings"/>) as a plain function of a snapshot of a fit's runs, like
/// <see cref="Pruner"/>: the FitActor applies what it returns (stops the runs replaced, asks for the warm clones as IC
/// operations, holds runs) and asks again whenever a run's state changes.
/// </summary>
/// <remarks>
/// <para><b>Points.</b> Every <see cref="PbtSettings.PerturbationInterval"/> units (epochs, or chunks over the fit)
/// below the runs' bound. It is synchronous: an active run standing at the next point is held there until no active
/// run is below it and every run has started (a resumed fit's runs report one by one), so that the decision does not
/// depend on which run was faster.</para>
/// <para><b>Decision.</b> The n active runs at the point are ranked by their metric there (NaN is worst, equal values
/// rank the lower run id first); with k = ⌊n·quantile⌋, each of the k worst is replaced by a warm clone of one of the
/// k best, drawn uniformly, with each mutated knob drawn as its mutation says. The draws come from a generator seeded
/// by the settings' seed and the point alone, so the same fit makes the same decisions, after a resume too.</para>
/// <para><b>Memory.</b> A point is decided once: the caller passes the points decided so far; a point at which a run
/// ended as replaced by PBT counts as decided too, which is what a resumed fit sees.</para>
/// </remarks>
public static class PbtPolicy
{
    /// <summary>The decision over <paramref name="runs"/>, <paramref name="decided"/> being the points already decided.</summary>
    public static PbtDecision Decide(PbtSettings pbt, IEnumerable<RunState> runs, IReadOnlySet<int> decided)
    {
        var all = runs.ToList();
        // a run not started yet (or, in a resumed fit, not recovered yet) may stand below any point: nothing is decided
        var unknown = all.Any(r => r.Status == RunStatus.New);
        var started = all.Where(r => r.Status != RunStatus.New).ToList();
        var values = started.ToDictionary(r => r.RunId, r => Pruner.Values(r, pbt.Resource, pbt.Metric));
        var active = started.Where(r => !r.IsEnded).ToList();
        if (active.Count == 0) return PbtDecision.None;
        var bound = started.Max(r => pbt.Resource == PruningResource.Chunks ? r.MaxEpochs * r.ChunksPerEpoch : r.MaxEpochs);
        var done = started.Where(r => r.EndedBy == PbtSettings.EndedBy).Select(r => values[r.RunId].Count).Concat(decided).ToHashSet();
        for (var point = pbt.PerturbationInterval; point < bound; point += pbt.PerturbationInterval)
        {
            if (done.Contains(point) || active.All(r => values[r.RunId].Count > point)) continue;
            var at = active.Where(r => values[r.RunId].Count == point).Select(r => r.RunId).ToList();
            if (unknown || active.Any(r => values[r.RunId].Count < point)) return new PbtDecision(null, [], at.ToHashSet());
            return new PbtDecision(point, Exploits(pbt, point, at, values, started.ToDictionary(r => r.RunId, r => r.Config)), new HashSet<int>());
        }
        return PbtDecision.None;
    }

    private static List<PbtExploit> Exploits(PbtSettings pbt, int point, List<int> at, Dictionary<int, List<double>> values,
        Dictionary<int, Config> configs)
    {
        double Score(int runId) => values[runId][point - 1] is var v && double.IsNaN(v) ? double.NegativeInfinity
            : pbt.Mode == MetricGoal.Max ? v : -v;
        var ranked = at.OrderByDescending(Score).ThenBy(id => id).ToList();
        var k = (int)Math.Floor(ranked.Count * pbt.Quantile);
        if (k == 0) return [];
        var top = ranked.Take(k).ToList();
        var random = new Random(unchecked(pbt.Seed * 1_000_003 + point));
        var unit = pbt.Resource == PruningResource.Chunks ? "chunk" : "epoch";
        var exploits = new List<PbtExploit>();
        foreach (var replaced in ranked.Skip(ranked.Count - k).Reverse())
        {
            var parent = top[random.Next(top.Count)];
            var knobs = configs[parent].Leaves().ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal);
            var changes = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (path, mutation) in pbt.Mutations)
                if (Mutate(mutation, knobs.GetValueOrDefault(path), random) is { } value) changes[path] = value;
            var reason = string.Create(CultureInfo.InvariantCulture,
                $"pbt at {unit} {point}: run {replaced} ({pbt.Metric} {values[replaced][point - 1]:G4}) is in the bottom {pbt.Quantile * 100:0.#}% of {ranked.Count}; " +
                $"replaced by a warm clone of run {parent} ({pbt.Metric} {values[parent][point - 1]:G4})");
            exploits.Add(new PbtExploit(replaced, parent, changes, reason));
        }
        return exploits;
    }

    /// <summary>The JSON of a knob's new value: the parent's <paramref name="value"/> times a factor drawn (a whole number rounded, at least 1), or an option drawn; null to keep it.</summary>
    private static string? Mutate(PbtMutation mutation, object? value, Random random) => mutation.Kind switch
    {
        PbtMutationKind.Factors => mutation.Factors![random.Next(mutation.Factors.Count)] is var factor
            ? value switch
            {
                long n => Math.Max(1, (long)Math.Round(n * factor)).ToString(CultureInfo.InvariantCulture),
                int n => Math.Max(1, (long)Math.Round(n * factor)).ToString(CultureInfo.InvariantCulture),
                double d => ConfigValue.ToJson(d * factor), // a real stays a real (1.0, not 1)
                _ => null, // not a number: the group's check refuses it
            }
            : null,
        PbtMutationKind.Resample => mutation.Options![random.Next(mutation.Options.Count)],
        _ => null,
    };
}
