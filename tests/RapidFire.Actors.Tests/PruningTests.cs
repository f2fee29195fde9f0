using RapidFire.Actors.Scheduling;
using RapidFire.Spec.Configs;

namespace RapidFire.Actors.Tests;

public class PruningTests
{
    private static readonly PruningRule ShaMax = new(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max) { Eta = 2 };
    private static readonly PruningRule AshaMax = ShaMax with { Kind = PruningKind.AsyncSuccessiveHalving };
    private static readonly PruningRule MedianLoss = new(PruningKind.MedianStopping, "loss", MetricGoal.Min) { MinResource = 2 };

    /// <summary>A metric that starts at <paramref name="start"/> and changes by <paramref name="step"/> each unit, for 16 units.</summary>
    private static double[] Rising(double start, double step) => Enumerable.Range(0, 16).Select(i => start + step * i).ToArray();

    /// <summary>
    /// A scripted fit: each run's metric per unit is fixed in advance; the test completes units, and after each one
    /// the rule decides and its stops are applied. Every decision is checked to be idempotent: deciding again on the
    /// snapshot after the stops stops nothing new and holds the same runs.
    /// </summary>
    private sealed class Fit(PruningRule rule, int maxResource, Dictionary<int, double[]> metrics)
    {
        private readonly Dictionary<int, int> done = metrics.Keys.ToDictionary(id => id, _ => 0);

        public Dictionary<int, int> StoppedAt { get; } = [];
        public Dictionary<int, string> Reasons { get; } = [];
        public HashSet<int> Ended { get; } = [];
        public HashSet<int> Exempt { get; } = [];
        public HashSet<int> EverHeld { get; } = [];
        public PruningDecision Last { get; private set; } = PruningDecision.None;

        public int Done(int runId) => done[runId];

        public IReadOnlyList<PruningSnapshot> Snapshot() => metrics.Keys.Order()
            .Select(id => new PruningSnapshot(id, !Ended.Contains(id), Exempt.Contains(id), metrics[id].Take(done[id]).ToList()))
            .ToList();

        /// <summary>A run added later (such as a clone), starting from nothing.</summary>
        public void Add(int runId, double[] values)
        {
            metrics[runId] = values;
            done[runId] = 0;
        }

        public PruningDecision Decide()
        {
            Last = Pruner.Decide(rule, Snapshot(), maxResource);
            EverHeld.UnionWith(Last.Held);
            foreach (var stop in Last.Stops)
            {
                Assert.DoesNotContain(stop.RunId, Ended);
                Ended.Add(stop.RunId);
                StoppedAt[stop.RunId] = done[stop.RunId];
                Reasons[stop.RunId] = stop.Reason;
            }
            var again = Pruner.Decide(rule, Snapshot(), maxResource);
            Assert.Empty(again.Stops);
            Assert.Equal(Last.Held.Order(), again.Held.Order());
            return Last;
        }

        public PruningDecision Complete(int runId)
        {
            Assert.DoesNotContain(runId, Ended);
            Assert.DoesNotContain(runId, Last.Held);
            done[runId]++;
            if (done[runId] == maxResource) Ended.Add(runId);
            return Decide();
        }

        public PruningDecision Complete(params int[] runIds)
        {
            foreach (var id in runIds) Complete(id);
            return Last;
        }

        /// <summary>Like the scheduler: the run with the fewest units done goes next, lowest id first, until none can.</summary>
        public void RunToEnd()
        {
            while (done.Keys.Where(id => !Ended.Contains(id) && !Last.Held.Contains(id))
                       .OrderBy(id => done[id]).ThenBy(id => id).Cast<int?>().FirstOrDefault() is { } next)
                Complete(next);
        }
    }

    private static Dictionary<int, double[]> EightRuns() => new()
    {
        [1] = Rising(0.40, 0.01),
        [2] = Rising(0.70, 0.01),
        [3] = Rising(0.50, 0.01),
        [4] = Rising(0.80, 0.01),
        [5] = Rising(0.60, 0.05),
        [6] = Rising(0.75, 0.05),
        [7] = Rising(0.45, 0.01),
        [8] = Rising(0.55, 0.01),
    };

    private static int[] Stops(PruningDecision decision) => decision.Stops.Select(s => s.RunId).ToArray();

    [Fact]
    public void Sha_rungs_sit_at_min_resource_times_powers_of_eta_below_the_bound()
    {
        Assert.Equal([1, 2, 4], Pruner.Rungs(ShaMax, 8));
        Assert.Equal([1, 2, 4, 8], Pruner.Rungs(ShaMax, 9));
        Assert.Equal([2, 6], Pruner.Rungs(ShaMax with { Eta = 3, MinResource = 2 }, 18));
        Assert.Empty(Pruner.Rungs(ShaMax with { MinResource = 4 }, 4));
        Assert.Equal([2, 3, 4], Pruner.Rungs(MedianLoss, 5));
    }

    [Fact]
    public void Sha_keeps_the_top_half_at_each_rung_and_leaves_one_survivor()
    {
        var fit = new Fit(ShaMax, 8, EightRuns());

        fit.RunToEnd();

        Assert.Equal(new Dictionary<int, int> { [1] = 1, [3] = 1, [7] = 1, [8] = 1, [2] = 2, [5] = 2, [4] = 4 }, fit.StoppedAt);
        Assert.Equal(8, fit.Done(6));
        Assert.Equal("sha rung 2 (2 epochs): top1_accuracy 0.65 is not in the top 1/2 of 4 runs (best 2 kept, cut 0.8)", fit.Reasons[5]);
        Assert.Equal("sha rung 1 (1 epoch): top1_accuracy 0.4 is not in the top 1/2 of 8 runs (best 4 kept, cut 0.6)", fit.Reasons[1]);
    }

    [Fact]
    public void Sha_holds_runs_at_a_rung_until_the_last_active_run_reaches_it()
    {
        var fit = new Fit(ShaMax, 4, new() { [1] = Rising(0.9, 0), [2] = Rising(0.8, 0), [3] = Rising(0.7, 0), [4] = Rising(0.6, 0), [5] = Rising(0.5, 0) });
        fit.Ended.Add(5); // failed before its first epoch: it neither holds the others nor counts

        Assert.Equal([1], fit.Complete(1).Held);
        Assert.Equal([1, 2], fit.Complete(2).Held.Order());
        var waiting = fit.Complete(3);
        Assert.Equal([1, 2, 3], waiting.Held.Order());
        Assert.Empty(waiting.Stops);

        var decided = fit.Complete(4);
        Assert.Empty(decided.Held);
        Assert.Equal([3, 4], Stops(decided));

        Assert.Equal([1], fit.Complete(1).Held); // the next rung, 2 epochs: run 1 waits for run 2
        Assert.Equal([2], Stops(fit.Complete(2)));
    }

    [Fact]
    public void Sha_counts_ended_runs_that_reached_a_rung_as_evidence_but_stops_only_active_ones()
    {
        var fit = new Fit(ShaMax, 4, new() { [1] = Rising(0.9, 0), [2] = Rising(0.8, 0), [3] = Rising(0.7, 0), [4] = Rising(0.6, 0) });
        fit.Complete(1);
        fit.Ended.Add(1); // failed after its first epoch, with the best value

        var decided = fit.Complete(2, 3, 4);

        Assert.Equal([3, 4], Stops(decided)); // run 1 takes one of the 2 places of 4 runs
        Assert.Contains("of 4 runs", decided.Stops[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Sha_never_stops_a_run_past_a_rung_when_a_later_run_arrives_at_it()
    {
        var fit = new Fit(ShaMax, 8, EightRuns());
        fit.Complete(1, 2, 3, 4, 5, 6, 7, 8); // rung 1 decided: 2, 4, 5 and 6 go on
        fit.Complete(2, 4, 5, 6); // rung 2 decided: 4 and 6 go on
        fit.Complete(4, 6);
        Assert.Equal([2, 5], fit.StoppedAt.Where(s => s.Value == 2).Select(s => s.Key).Order());

        fit.Add(9, Rising(0.99, 0)); // a clone added later, better than all
        Assert.Empty(fit.Complete(9).Stops); // at rung 1 among 9 runs: the best, it goes on
        var atRung2 = fit.Complete(9); // at rung 2 among 5 runs (2, 4, 5, 6, 9), the best 2 are 9 and 4
        Assert.Empty(atRung2.Stops); // run 6 is past rung 2 (3 epochs): never judged there again
        Assert.Equal([4], fit.Complete(4).Held); // and run 4 waits at rung 4 for run 9
    }

    [Fact]
    public void Deciding_again_on_the_same_snapshot_gives_the_same_decision()
    {
        var fit = new Fit(ShaMax, 8, EightRuns());
        fit.Complete(1, 2, 3, 4, 5, 6, 7);
        var snapshot = fit.Snapshot().Select(r => r.RunId == 8 ? r with { Values = [0.55] } : r).ToList();

        var first = Pruner.Decide(ShaMax, snapshot, 8);
        var second = Pruner.Decide(ShaMax, snapshot, 8);

        Assert.Equal(first.Stops, second.Stops);
        Assert.Equal([1, 3, 7, 8], Stops(first));
    }

    [Fact]
    public void Asha_stops_late_arrivals_below_the_cut_and_keeps_early_ones()
    {
        var fit = new Fit(AshaMax, 8, new()
        {
            [1] = Rising(0.60, 0), [2] = Rising(0.50, 0), [3] = Rising(0.70, 0), [4] = Rising(0.65, 0), [5] = Rising(0.62, 0),
        });

        Assert.Empty(fit.Complete(1, 1, 1).Stops); // first at rungs 1 and 2, alone each time: it goes on, never waits
        Assert.Equal([2], Stops(fit.Complete(2))); // rung 1, 2 runs, best 1: 0.5 is below 0.6
        Assert.Empty(fit.Complete(3, 3, 3).Stops); // the best at rung 1 (of 3) and at rung 2 (of 2)
        Assert.Equal([4], Stops(fit.Complete(4, 4))); // second of 4 at rung 1 (best 2), but second of 3 at rung 2 (best 1)
        Assert.Equal([5], Stops(fit.Complete(5))); // rung 1, 5 runs, best 2: third
        Assert.Equal("asha rung 1 (1 epoch): top1_accuracy 0.62 is not in the top 1/2 of 5 runs (best 2 kept, cut 0.65)", fit.Reasons[5]);

        Assert.Empty(fit.Complete(1).Stops); // run 1, worse than runs 3 and 4, is alone at rung 4: the early one goes on
        Assert.Equal(new Dictionary<int, int> { [2] = 1, [4] = 2, [5] = 1 }, fit.StoppedAt);
        Assert.Empty(fit.EverHeld);
    }

    [Fact]
    public void Asha_never_holds_a_run_and_judges_one_still_waiting_at_a_rung_against_later_arrivals()
    {
        var fit = new Fit(AshaMax, 8, EightRuns());

        fit.RunToEnd(); // runs take turns, so each waits at rung 1 while the others arrive

        Assert.Empty(fit.EverHeld);
        Assert.Equal(new Dictionary<int, int> { [1] = 1, [3] = 1, [5] = 1, [7] = 1, [8] = 1, [2] = 2, [6] = 2 }, fit.StoppedAt);
        Assert.Equal(8, fit.Done(4));
    }

    [Fact]
    public void Median_stops_a_run_strictly_worse_than_the_median_of_the_others_once_enough_reached_the_point()
    {
        var fit = new Fit(MedianLoss, 10, new()
        {
            [1] = Rising(1.0, 0), [2] = Rising(2.0, 0), [3] = Rising(3.0, 0),
            [4] = Rising(2.5, 0), [5] = Rising(1.5, 0), [6] = [9.0, 2.0, 2.0, 2.0],
        });

        fit.Complete(1, 1, 1, 1, 2, 2, 2, 2);
        Assert.Empty(fit.Complete(3, 3, 3, 3).Stops); // the worst, but only 2 others reached each point
        Assert.Equal([4], Stops(fit.Complete(4, 4))); // 2.5 against the median 2 of 1, 2, 3
        Assert.Equal("median at 2 epochs: loss 2.5 is worse than the median 2 of 3 other runs (lower is better)", fit.Reasons[4]);
        Assert.Empty(fit.Complete(5, 5, 5).Stops); // 1.5 against 2.25 (of 1, 2, 2.5, 3), then against 2 (of 1, 2, 3)
        Assert.Empty(fit.Complete(6).Stops); // 9 at 1 epoch: within the grace period of 2
        Assert.Empty(fit.Complete(6).Stops); // 2 is the median 2 of 1, 1.5, 2, 2.5, 3: not strictly worse
        Assert.Equal([6], Stops(fit.Complete(6))); // at 3 epochs: 2 against the median 1.75 of 1, 1.5, 2, 3
        Assert.Equal(new Dictionary<int, int> { [4] = 2, [6] = 3 }, fit.StoppedAt);
    }

    [Fact]
    public void Median_judges_a_run_waiting_at_a_point_against_the_runs_arriving_meanwhile()
    {
        var fit = new Fit(MedianLoss with { MinResource = 1 }, 4, new()
        {
            [1] = Rising(1.0, 0), [2] = Rising(2.0, 0), [3] = Rising(3.0, 0), [4] = Rising(2.5, 0),
        });

        Assert.Empty(fit.Complete(1, 2, 3).Stops); // only 2 others at 1 epoch
        var decided = fit.Complete(4);
        Assert.Equal([3, 4], Stops(decided)); // run 4: 2.5 against the median 2 of 1, 2, 3; run 3, still at 1 epoch: 3 against 2 of 1, 2, 2.5
        Assert.Contains("median 2 of 3 other runs", decided.Stops[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Min_and_max_modes_rank_in_opposite_directions()
    {
        var values = new Dictionary<int, double[]> { [1] = [0.1], [2] = [0.4], [3] = [0.2], [4] = [0.3] };
        PruningSnapshot[] runs = [.. values.Select(v => new PruningSnapshot(v.Key, true, false, v.Value))];

        Assert.Equal([1, 3], Stops(Pruner.Decide(ShaMax, runs, 4)));
        Assert.Equal([2, 4], Stops(Pruner.Decide(ShaMax with { Mode = MetricGoal.Min, Metric = "loss" }, runs, 4)));
    }

    [Fact]
    public void Ties_rank_the_lower_run_id_first()
    {
        PruningSnapshot[] runs = [.. new[] { 4, 2, 3, 1 }.Select(id => new PruningSnapshot(id, true, false, [0.5]))];

        var decision = Pruner.Decide(ShaMax, runs, 4);

        Assert.Equal([3, 4], Stops(decision));
        Assert.Contains("0.5 is not in the top 1/2 of 4 runs (best 2 kept, cut 0.5)", decision.Stops[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void NaN_is_worse_than_any_value_in_either_mode()
    {
        PruningSnapshot[] low = [new(1, true, false, [double.NaN]), new(2, true, false, [-1e300])];
        PruningSnapshot[] high = [new(1, true, false, [double.NaN]), new(2, true, false, [1e300])];

        Assert.Equal([1], Stops(Pruner.Decide(ShaMax, low, 4)));
        Assert.Equal([1], Stops(Pruner.Decide(ShaMax with { Mode = MetricGoal.Min }, high, 4)));
    }

    [Fact]
    public void Exempt_runs_are_never_stopped_nor_held_and_do_not_hold_the_others()
    {
        var fit = new Fit(ShaMax, 8, new() { [1] = Rising(0.1, 0), [2] = Rising(0.9, 0), [3] = Rising(0.8, 0), [4] = Rising(0.7, 0), [5] = Rising(0.6, 0) });
        fit.Exempt.Add(1);

        Assert.Empty(fit.Complete(1).Held); // at rung 1 before the others: not held
        var decided = fit.Complete(2, 3, 4, 5);
        Assert.Equal([4, 5], Stops(decided)); // run 1 is the worst of 5 but exempt; the best 2 of 5 are 2 and 3

        Assert.Equal([2], fit.Complete(2).Held); // at rung 2, run 2 waits for run 3 but not for run 1, still at 1 epoch
        var atRung2 = fit.Complete(3);
        Assert.Empty(atRung2.Held);
        Assert.Equal([3], Stops(atRung2)); // best 1 of 2
        Assert.Empty(fit.Complete(1).Stops); // run 1 reaches rung 2, last of 3, and is still not stopped

        var asha = Pruner.Decide(AshaMax, [new(1, true, true, [0.1]), new(2, true, false, [0.9])], 8);
        Assert.Empty(asha.Stops);
        var median = Pruner.Decide(MedianLoss with { MinSamples = 1 }, [new(1, true, true, [5, 5]), new(2, true, false, [1, 1])], 8);
        Assert.Empty(median.Stops);
    }

    [Fact]
    public void Chunk_resource_is_the_same_rule_over_chunks_counted_across_the_whole_fit()
    {
        // 2 epochs of 3 chunks: the bound is 6 chunks; rungs at 2 and 4 chunks
        var rule = ShaMax with { Resource = PruningResource.Chunks, MinResource = 2 };
        Assert.Equal([2, 4], Pruner.Rungs(rule, 6));
        var fit = new Fit(rule, 6, new() { [1] = Rising(0.5, 0.1), [2] = Rising(0.6, 0.1), [3] = Rising(0.4, 0.1), [4] = Rising(0.7, 0.1) });

        fit.RunToEnd();

        Assert.Equal(new Dictionary<int, int> { [1] = 2, [3] = 2, [2] = 4 }, fit.StoppedAt);
        Assert.Equal(6, fit.Done(4));
        Assert.StartsWith("sha rung 1 (2 chunks): top1_accuracy 0.6 is not in the top 1/2 of 4 runs", fit.Reasons[1], StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_at_the_bound_is_not_judged()
    {
        var rule = MedianLoss with { MinResource = 1, MinSamples = 1 };
        PruningSnapshot[] runs = [new(1, true, false, [1, 1]), new(2, true, false, [9, 9])];

        Assert.Empty(Pruner.Decide(rule, runs, 2).Stops); // 2 units of 2: done, whatever its value
        Assert.Equal([2], Stops(Pruner.Decide(rule, runs, 3)));
        Assert.Empty(Pruner.Decide(ShaMax with { MinResource = 2 }, runs, 2).Stops);
    }

    [Fact]
    public void An_invalid_rule_or_a_run_given_twice_is_refused()
    {
        PruningSnapshot[] runs = [new(1, true, false, [0.5])];

        var bad = Assert.Throws<ArgumentException>(() => Pruner.Decide(ShaMax with { Eta = 1 }, runs, 4));
        Assert.Contains("pruning.eta", bad.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Pruner.Decide(ShaMax, [.. runs, .. runs], 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pruner.Decide(ShaMax, runs, 0));
    }
}
