using System.Globalization;
using RapidFire.Spec.Configs;

namespace RapidFire.Actors.Scheduling;

/// <summary>One run as a pruning rule sees it.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Active">The run is still training or waiting; false once it ended (completed, stopped, failed).</param>
/// <param name="Exempt">Never stop or hold it: a user resumed it after a rule stopped it.</param>
/// <param name="Values">
/// The run's metric after each resource unit it completed: <c>Values[i]</c> after unit i+1 (epoch i+1, or chunk i+1
/// counted over the whole fit). Its count is how far the run got. NaN (a metric that diverged or is missing) is
/// worse than any number.
/// </param>
public sealed record PruningSnapshot(int RunId, bool Active, bool Exempt, IReadOnlyList<double> Values);

/// <summary>A run a rule stops.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Reason">One line naming the rule, the rung or point, the metric and the threshold it missed.</param>
public sealed record PruneStop(int RunId, string Reason);

/// <summary>What a pruning rule decided on one snapshot.</summary>
/// <param name="Stops">The runs to stop now, by run id; their <c>ended_by</c> is the rule's <see cref="PruningRule.EndedBy"/>.</param>
/// <param name="Held">Active runs that must not be scheduled further yet (the barrier of sha).</param>
public sealed record PruningDecision(IReadOnlyList<PruneStop> Stops, IReadOnlySet<int> Held)
{
    /// <summary>Nothing to stop, nothing held.</summary>
    public static PruningDecision None { get; } = new([], new HashSet<int>());
}

/// <summary>
/// The automatic pruning rules (<see cref="PruningRule"/>) as a plain function of a snapshot of all the runs of a fit.
/// It keeps nothing between calls, so the same snapshot, such as one rebuilt after a crash and resume, gives the
/// same decision. The caller applies it (stops runs, holds runs back) and asks again whenever a run completes a
/// unit, before it schedules that run's next one.
/// </summary>
/// <remarks>
/// <para><b>Who is judged.</b> Only active runs that are not exempt are stopped or held, and each only at the point
/// it stands at: a run whose <c>Values.Count</c> is exactly a pruning point. While it stands there (waiting for a
/// device, or held by sha) each call judges it again, against the runs that reached the point since: it may still be
/// stopped there, having trained no further. A run that went past a point is never judged there again, so a
/// decision cannot stop it later for a rung it already passed. Every run that reached a point, whatever its status
/// (ended, stopped by the rule, exempt), is evidence there, by its value at that point; a run stopped at an earlier
/// rung never reaches a later one, so it is evidence only where it got to. Points at or beyond <c>maxResource</c>
/// are not pruning points: a run there is done.</para>
/// <para><b>Ranking.</b> The rule's <see cref="PruningRule.Mode"/> says which direction is better; NaN is worse than
/// any number; equal values rank the lower run id first.</para>
/// <para><b>sha</b> (synchronous successive halving). Rungs sit at r_k = MinResource·Eta^k units, k = 0, 1, …,
/// below maxResource. A judged run standing at r_k is held while any other judged run (active, not exempt) is below
/// r_k: the barrier. Once none is, the n runs that reached r_k (Values.Count ≥ r_k) are ranked by their value at
/// r_k; the best max(1, ⌊n/Eta⌋) go on and the judged runs standing at r_k outside them are stopped. n is stable
/// over repeated calls: the runs stopped at r_k still reached it. Exempt runs neither wait nor make others wait,
/// but count as evidence where they got to. A run that arrives at r_k after its rung was decided (say a run added
/// later) meets an open barrier and is judged the same way against all the runs that reached r_k; the runs already
/// past r_k are not judged again.</para>
/// <para><b>asha</b> (asynchronous successive halving, the stopping variant). The same rungs, no barrier: a judged
/// run standing at r_k is ranked with all the runs that reached r_k so far (itself included, n of them) and stopped
/// when it is outside the best max(1, ⌊n/Eta⌋). The first run at a rung always goes on; later arrivals meet more
/// evidence, and so does a run still waiting at the rung. (Ray Tune cuts at the (1 - 1/Eta) quantile of the
/// recorded values instead: nearly the same cut, interpolated between two runs.)</para>
/// <para><b>median</b> (median stopping). Every unit r with MinResource ≤ r &lt; maxResource is a point: a judged run
/// standing at r is stopped when at least MinSamples other runs reached r and its value at r is strictly worse than
/// the median of the others' values at r (the mean of the two middle values when their number is even).</para>
/// </remarks>
public static partial class Pruner
{
    /// <summary>
    /// The pruning points of <paramref name="rule"/>, ascending: MinResource·Eta^k below
    /// <paramref name="maxResource"/> for sha and asha, MinResource … maxResource-1 for median.
    /// </summary>
    /// <param name="rule">A valid rule.</param>
    /// <param name="maxResource">The runs' resource bound: their epochs, or epochs × chunks for the chunk resource.</param>
    public static IReadOnlyList<int> Rungs(PruningRule rule, int maxResource)
    {
        Check(rule, maxResource);
        var rungs = new List<int>();
        if (rule.Kind == PruningKind.MedianStopping)
        {
            for (var r = rule.MinResource; r < maxResource; r++) rungs.Add(r);
            return rungs;
        }
        for (long r = rule.MinResource; r < maxResource; r *= rule.Eta) rungs.Add((int)r);
        return rungs;
    }

    /// <summary>Which runs <paramref name="rule"/> stops, and which it holds back, on this snapshot (see the remarks of <see cref="Pruner"/>).</summary>
    /// <param name="rule">A valid rule (<see cref="PruningRule.Validate"/>); an invalid one is an <see cref="ArgumentException"/>.</param>
    /// <param name="runs">Every run of the fit, ended ones included, each once.</param>
    /// <param name="maxResource">
    /// The runs' resource bound: their epochs, or epochs × chunks for the chunk resource. Where runs differ, the
    /// largest; a run with a smaller bound ends there and stays evidence.
    /// </param>
    public static PruningDecision Decide(PruningRule rule, IReadOnlyList<PruningSnapshot> runs, int maxResource)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var rungs = Rungs(rule, maxResource);
        if (runs.Any(r => r is null || r.Values is null))
            throw new ArgumentException("every run needs a snapshot with its values", nameof(runs));
        if (runs.GroupBy(r => r.RunId).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"run {twice.Key} is given twice", nameof(runs));

        var judged = runs.Where(r => r.Active && !r.Exempt).OrderBy(r => r.RunId).ToList();
        var rankings = new Dictionary<int, List<PruningSnapshot>>();
        List<PruningSnapshot> Reached(int resource)
        {
            if (!rankings.TryGetValue(resource, out var ranked))
                rankings[resource] = ranked = runs.Where(r => r.Values.Count >= resource)
                    .OrderBy(r => Badness(rule, r.Values[resource - 1])).ThenBy(r => r.RunId).ToList();
            return ranked;
        }

        var stops = new List<PruneStop>();
        var held = new HashSet<int>();
        foreach (var run in judged)
        {
            var at = run.Values.Count;
            var rung = RungIndex(rungs, at);
            if (rung < 0) continue;
            switch (rule.Kind)
            {
                case PruningKind.SuccessiveHalving when judged.Any(other => other.Values.Count < at):
                    held.Add(run.RunId);
                    break;
                case PruningKind.SuccessiveHalving or PruningKind.AsyncSuccessiveHalving:
                    if (RankCut(rule, run, rung, at, Reached(at)) is { } cut) stops.Add(cut);
                    break;
                case PruningKind.MedianStopping:
                    if (MedianCut(rule, run, at, Reached(at)) is { } below) stops.Add(below);
                    break;
            }
        }
        return stops.Count == 0 && held.Count == 0 ? PruningDecision.None : new PruningDecision(stops, held);
    }

    private static void Check(PruningRule rule, int maxResource)
    {
        ArgumentNullException.ThrowIfNull(rule);
        if (rule.Validate() is { Count: > 0 } errors)
            throw new ArgumentException($"invalid pruning rule: {string.Join("; ", errors)}", nameof(rule));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxResource, 1);
    }

    /// <summary>The index of the rung at exactly <paramref name="at"/> units, or -1.</summary>
    private static int RungIndex(IReadOnlyList<int> rungs, int at)
    {
        for (var k = 0; k < rungs.Count && rungs[k] <= at; k++)
            if (rungs[k] == at) return k;
        return -1;
    }

    /// <summary>Lower is better whatever the mode; NaN is the worst.</summary>
    private static double Badness(PruningRule rule, double value) =>
        double.IsNaN(value) ? double.PositiveInfinity : rule.Mode == MetricGoal.Max ? -value : value;

    /// <summary>sha and asha: the stop of a run outside the best max(1, ⌊n/Eta⌋) at its rung, or null.</summary>
    private static PruneStop? RankCut(PruningRule rule, PruningSnapshot run, int rung, int at, List<PruningSnapshot> reached)
    {
        var keep = Math.Max(1, reached.Count / rule.Eta);
        if (reached.FindIndex(r => r.RunId == run.RunId) < keep) return null;
        var cut = reached[keep - 1].Values[at - 1];
        return new PruneStop(run.RunId,
            $"{rule.Name} rung {rung + 1} ({Units(rule, at)}): {rule.Metric} {Show(run.Values[at - 1])} is not in the top " +
            $"1/{rule.Eta} of {reached.Count} runs (best {keep} kept, cut {Show(cut)})");
    }

    /// <summary>median: the stop of a run strictly worse than the median of the others at its point, or null.</summary>
    private static PruneStop? MedianCut(PruningRule rule, PruningSnapshot run, int at, List<PruningSnapshot> reached)
    {
        var others = reached.Where(r => r.RunId != run.RunId).Select(r => Badness(rule, r.Values[at - 1])).ToList();
        if (others.Count < rule.MinSamples) return null;
        var middle = others.Count / 2; // others is ranked best first already
        var median = others.Count % 2 == 1 ? others[middle] : (others[middle - 1] + others[middle]) / 2;
        if (!(Badness(rule, run.Values[at - 1]) > median)) return null;
        var medianValue = rule.Mode == MetricGoal.Max ? -median : median;
        return new PruneStop(run.RunId,
            $"{rule.Name} at {Units(rule, at)}: {rule.Metric} {Show(run.Values[at - 1])} is worse than the median " +
            $"{Show(medianValue)} of {others.Count} other runs ({(rule.Mode == MetricGoal.Max ? "higher" : "lower")} is better)");
    }

    private static string Units(PruningRule rule, int count)
    {
        var unit = rule.Resource == PruningResource.Chunks ? "chunk" : "epoch";
        return $"{count} {unit}{(count == 1 ? "" : "s")}";
    }

    private static string Show(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}
