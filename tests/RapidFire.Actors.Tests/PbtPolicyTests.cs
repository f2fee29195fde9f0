using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using RapidFire.Spec.Configs;

namespace RapidFire.Actors.Tests;

/// <summary>Population Based Training's decisions as a pure function of the runs' states (no actors).</summary>
public class PbtPolicyTests
{
    private static Config Cfg(double lr, long hidden = 8) => new(new Dictionary<string, object?>
    {
        ["hidden"] = hidden,
        ["epochs"] = 4L,
        ["batch_size"] = 16L,
        ["optimizer"] = new Dictionary<string, object?> { ["name"] = "SGD", ["args"] = new Dictionary<string, object?> { ["lr"] = lr } },
    });

    private static PbtSettings Settings(double quantile = 0.25, int seed = 0, int interval = 1) => new("loss", MetricGoal.Min)
    {
        Quantile = quantile,
        Seed = seed,
        PerturbationInterval = interval,
        Mutations = new Dictionary<string, PbtMutation>
        {
            ["optimizer.args.lr"] = new(PbtMutationKind.Factors, [0.5, 2.0]),
            ["hidden"] = new(PbtMutationKind.Resample, Options: ["8", "16", "32"]),
        },
    };

    /// <summary>A run that validated after each of its epochs, with these losses.</summary>
    private static RunState Run(int id, Config cfg, params double[] losses) => new RunState(id, cfg)
    {
        Status = RunStatus.Ongoing,
        ChunksPerEpoch = 1,
        HasValidation = true,
        EpochsDone = losses.Length,
        ValidationHistory = [.. losses.Select(l => (IReadOnlyDictionary<string, double>)new Dictionary<string, double> { ["loss"] = l })],
    };

    [Fact]
    public void Runs_at_a_point_wait_there_while_another_is_below_it()
    {
        var decision = PbtPolicy.Decide(Settings(), [Run(1, Cfg(0.1), 0.5), Run(2, Cfg(0.2), 0.4), Run(3, Cfg(0.3)), Run(4, Cfg(0.4), 0.9)], new HashSet<int>());
        Assert.Null(decision.Point);
        Assert.Empty(decision.Exploits);
        Assert.Equal(new HashSet<int> { 1, 2, 4 }, decision.Held);
    }

    [Fact]
    public void Nothing_is_decided_while_a_run_has_not_started_or_recovered_yet()
    {
        var decision = PbtPolicy.Decide(Settings(quantile: 0.5),
            [Run(1, Cfg(0.1), 0.5), Run(2, Cfg(0.2), 0.4), Run(3, Cfg(0.3), 0.9), new RunState(4, Cfg(0.4))], new HashSet<int>());
        Assert.Equal((null, 0), (decision.Point, decision.Exploits.Count));
        Assert.Equal(new HashSet<int> { 1, 2, 3 }, decision.Held);
    }

    [Fact]
    public void Once_all_reached_it_the_worst_quantile_is_replaced_by_clones_of_the_best_with_mutated_knobs()
    {
        var runs = new[] { Run(1, Cfg(0.1), 0.5), Run(2, Cfg(0.2), 0.4), Run(3, Cfg(0.3), double.NaN), Run(4, Cfg(0.4), 0.9) };
        var decision = PbtPolicy.Decide(Settings(quantile: 0.5), runs, new HashSet<int>());

        Assert.Equal(1, decision.Point);
        Assert.Empty(decision.Held);
        // NaN is worst, then 0.9: runs 3 and 4 go, each for a clone of run 2 or run 1 (the best two)
        Assert.Equal([3, 4], decision.Exploits.Select(x => x.Replaced));
        Assert.All(decision.Exploits, x =>
        {
            Assert.Contains(x.Parent, new[] { 1, 2 });
            var parentLr = runs[x.Parent - 1].Config.Optimizer.Args["lr"] is double d ? d : double.NaN;
            Assert.Contains(x.Changes["optimizer.args.lr"], new[] { ConfigValue.ToJson(parentLr * 0.5), ConfigValue.ToJson(parentLr * 2.0) });
            Assert.Contains(x.Changes["hidden"], new[] { "8", "16", "32" });
            Assert.StartsWith($"pbt at epoch 1: run {x.Replaced} (loss ", x.Reason);
            Assert.EndsWith($"replaced by a warm clone of run {x.Parent} (loss {(x.Parent == 1 ? "0.5" : "0.4")})", x.Reason);
        });
    }

    [Fact]
    public void The_same_seed_and_point_draw_the_same_and_another_seed_may_not()
    {
        var runs = Enumerable.Range(1, 8).Select(i => Run(i, Cfg(0.1 * i), 1.0 / i)).ToList();
        var first = PbtPolicy.Decide(Settings(quantile: 0.5, seed: 3), runs, new HashSet<int>());
        var again = PbtPolicy.Decide(Settings(quantile: 0.5, seed: 3), runs.AsEnumerable().Reverse(), new HashSet<int>());
        Assert.Equal(first.Exploits.Select(x => (x.Replaced, x.Parent, string.Join(",", x.Changes))), again.Exploits.Select(x => (x.Replaced, x.Parent, string.Join(",", x.Changes))));
        var seeds = Enumerable.Range(0, 10).Select(seed => string.Join(";", PbtPolicy.Decide(Settings(quantile: 0.5, seed: seed), runs, new HashSet<int>())
            .Exploits.Select(x => $"{x.Parent}{string.Join(",", x.Changes)}"))).Distinct();
        Assert.True(seeds.Count() > 1);
    }

    [Fact]
    public void A_point_is_decided_once_and_one_where_a_run_was_replaced_counts_as_decided_after_a_resume()
    {
        var runs = new[] { Run(1, Cfg(0.1), 0.5), Run(2, Cfg(0.2), 0.4), Run(3, Cfg(0.3), 0.7), Run(4, Cfg(0.4), 0.9) };
        Assert.Equal(PbtDecision.None.Exploits, PbtPolicy.Decide(Settings(), runs, new HashSet<int> { 1 }).Exploits);
        Assert.Null(PbtPolicy.Decide(Settings(), runs, new HashSet<int> { 1 }).Point);

        var resumed = runs.Take(3).Append(Run(4, Cfg(0.4), 0.9) with { Status = RunStatus.Stopped, EndedBy = PbtSettings.EndedBy }).ToArray();
        Assert.Null(PbtPolicy.Decide(Settings(), resumed, new HashSet<int>()).Point);
    }

    [Fact]
    public void Too_small_a_population_for_the_quantile_replaces_none_and_the_last_epoch_is_no_point()
    {
        var three = new[] { Run(1, Cfg(0.1), 0.5), Run(2, Cfg(0.2), 0.4), Run(3, Cfg(0.3), 0.7) };
        var decision = PbtPolicy.Decide(Settings(quantile: 0.25), three, new HashSet<int>());
        Assert.Equal((1, 0), (decision.Point, decision.Exploits.Count));

        var atEnd = new[] { Run(1, Cfg(0.1), 0.5, 0.4, 0.3, 0.2), Run(2, Cfg(0.2), 0.4, 0.3, 0.2, 0.1) };
        Assert.Null(PbtPolicy.Decide(Settings(quantile: 0.5), atEnd, new HashSet<int> { 1, 2, 3 }).Point);
    }

    [Fact]
    public void A_whole_number_knob_multiplied_is_rounded_and_at_least_one()
    {
        var settings = Settings(quantile: 0.5) with
        {
            Mutations = new Dictionary<string, PbtMutation> { ["hidden"] = new(PbtMutationKind.Factors, [0.01]) },
        };
        var decision = PbtPolicy.Decide(settings, [Run(1, Cfg(0.1, hidden: 8), 0.5), Run(2, Cfg(0.1, hidden: 64), 0.9)], new HashSet<int>());
        Assert.Equal("1", Assert.Single(decision.Exploits).Changes["hidden"]);
    }
}
