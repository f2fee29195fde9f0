using RapidFire.Spec.Configs;

namespace RapidFire.Spec.Tests.Configs;

public class RandomSearchTests
{
    private static ConfigTemplate WithUserKnob(object? knob) =>
        Samples.Minimal() with { UserKnobs = new Dictionary<string, object?> { ["x"] = knob } };

    private static List<T> Draw<T>(object? knob, int samples, int seed = 7) =>
        new RandomSearch(WithUserKnob(knob), samples, seed).Expand().Select(c => c.Get<T>("x")).ToList();

    [Fact]
    public void Random_search_is_reproducible_from_its_seed()
    {
        var template = Samples.IssueTemplate() with
        {
            Train = Samples.IssueTemplate().Train with
            {
                Optimizer = new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = Knob.Range(1e-4, 1e-1, log: true) }),
            },
        };

        var first = new RandomSearch(template, samples: 10, seed: 42).Expand().Select(c => c.ToJson()).ToList();
        var again = new RandomSearch(template, samples: 10, seed: 42).Expand().Select(c => c.ToJson()).ToList();
        var other = new RandomSearch(template, samples: 10, seed: 43).Expand().Select(c => c.ToJson()).ToList();

        Assert.Equal(10, first.Count);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void Random_search_json_defaults_the_seed_to_zero()
    {
        var json = """{ "search": "random", "samples": 5, "user_knobs": {"x": {"range": [0, 1]}}, "train": {TRAIN} }"""
            .Replace("{TRAIN}", "{" + Samples.ValidTrain + "}", StringComparison.Ordinal);

        var group = Assert.IsType<RandomSearch>(ConfigGroup.FromJson(json, "r.json"));

        Assert.Equal(RandomSearch.DefaultSeed, group.Seed);
        Assert.Equal(new RandomSearch(WithUserKnob(Knob.Range(0, 1)), 5, seed: 0).Expand(), group.Expand());
    }

    [Fact]
    public void Uniform_float_range_stays_within_its_bounds()
    {
        var values = Draw<double>(Knob.Range(-2.5, 4.0), 2000);

        Assert.All(values, v => Assert.InRange(v, -2.5, 4.0));
        Assert.InRange(values.Average(), 0.55, 0.95); // the middle is 0.75
    }

    [Fact]
    public void Log_range_stays_within_its_bounds_and_is_uniform_in_log_space()
    {
        var values = Draw<double>(Knob.Range(1e-5, 1e-1, log: true), 2000);

        Assert.All(values, v => Assert.InRange(v, 1e-5, 1e-1));
        var logs = values.Select(Math.Log10).Order().ToList();
        Assert.InRange(logs[logs.Count / 2], -3.2, -2.8); // median of log10 near the middle, -3
        Assert.InRange(logs.Count(l => l < -4), 400, 600); // a quarter of the log interval holds a quarter of the draws
    }

    [Fact]
    public void Int_range_gives_whole_numbers_within_both_bounds_inclusive()
    {
        var values = Draw<long>(Knob.IntRange(1, 4), 400);

        Assert.All(values, v => Assert.InRange(v, 1, 4));
        Assert.Equal([1L, 2, 3, 4], values.Distinct().Order());
        var leaf = new RandomSearch(WithUserKnob(Knob.IntRange(1, 4)), 1).Expand()[0];
        Assert.IsType<long>(leaf["x"]);
    }

    [Fact]
    public void Int_log_range_gives_whole_numbers_favouring_small_ones()
    {
        var values = Draw<long>(Knob.IntRange(1, 1000, log: true), 2000);

        Assert.All(values, v => Assert.InRange(v, 1, 1000));
        Assert.InRange(values.Count(v => v < 32), 800, 1200); // about half the log interval
    }

    [Fact]
    public void Step_snaps_values_to_start_plus_multiples_of_the_step_within_the_bounds()
    {
        var floats = Draw<double>(Knob.Range(0.1, 1.0, step: 0.2), 300);
        var ints = Draw<long>(Knob.IntRange(16, 128, step: 16), 300);

        Assert.Equal([0.1, 0.3, 0.5, 0.7, 0.9], floats.Distinct().Order());
        Assert.Equal([16L, 32, 48, 64, 80, 96, 112, 128], ints.Distinct().Order());
    }

    [Fact]
    public void Log_range_with_a_step_stays_on_the_grid()
    {
        var values = Draw<long>(Knob.IntRange(8, 512, log: true, step: 8), 300);

        Assert.All(values, v => Assert.True(v % 8 == 0 && v is >= 8 and <= 512, $"{v}"));
    }

    [Fact]
    public void List_knobs_are_sampled_uniformly()
    {
        var values = Draw<string>(Knob.List("a", "b", "c", "d"), 4000);

        foreach (var option in new[] { "a", "b", "c", "d" })
            Assert.InRange(values.Count(v => v == option), 850, 1150);
    }

    [Fact]
    public void Random_epochs_from_an_int_range_are_valid_epochs()
    {
        var leaves = new RandomSearch(Samples.Minimal(epochs: Knob.IntRange(2, 5), batchSize: Knob.IntRange(8, 64, log: true)), 50, 3).Expand();

        Assert.All(leaves, l => Assert.InRange(l.Epochs, 2, 5));
        Assert.All(leaves, l => Assert.InRange(l.BatchSize, 8, 64));
    }
}
