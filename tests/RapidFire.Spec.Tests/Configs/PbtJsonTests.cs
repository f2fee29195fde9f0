using RapidFire.Spec.Configs;
using static RapidFire.Spec.Tests.Configs.Samples;

namespace RapidFire.Spec.Tests.Configs;

/// <summary><c>"search": "pbt"</c>: the grid of List knobs is the population, the <c>"pbt"</c> block steers it.</summary>
public class PbtJsonTests
{
    private const string Group = """
        { "search": "pbt", "seed": 11,
          "user_knobs": {"hidden": [64, 128]},
          "train": {"epochs": 4, "batch_size": 32, "optimizer": {"name": "Adam", "args": {"lr": [0.001, 0.01]}}},
          "pbt": {"perturbation_interval": 2, "quantile": 0.5, "metric": "top1_accuracy", "mode": "max",
                  "mutations": {"optimizer.lr": {"factors": [0.8, 1.2]}, "hidden": "resample", "batch_size": "keep"}} }
        """;

    [Fact]
    public void A_pbt_group_expands_to_its_grid_and_carries_its_settings_with_the_resample_options_of_the_population()
    {
        var group = ConfigGroup.FromJson(Group, "pbt.json");

        Assert.Equal(4, group.Expand().Count);
        var pbt = group.Pbt!;
        Assert.Equal(("top1_accuracy", MetricGoal.Max, 2, 0.5, 11, PruningResource.Epochs),
            (pbt.Metric, pbt.Mode, pbt.PerturbationInterval, pbt.Quantile, pbt.Seed, pbt.Resource));
        Assert.Equal(["optimizer.args.lr", "hidden", "batch_size"], pbt.Mutations.Keys);
        Assert.Equal([0.8, 1.2], pbt.Mutations["optimizer.args.lr"].Factors!);
        Assert.Equal(["64", "128"], pbt.Mutations["hidden"].Options!);
        Assert.Equal(PbtMutationKind.Keep, pbt.Mutations["batch_size"].Kind);
        Assert.Null(ConfigGroup.FromJson(WithTrain(ValidTrain), "test.json").Pbt);
    }

    [Fact]
    public void A_pbt_group_written_to_json_reads_back_the_same()
    {
        var group = ConfigGroup.FromJson(Group, "pbt.json");
        var back = ConfigGroup.FromJson(group.ToJson(), "back.json");
        Assert.Equal(group.ToJson(), back.ToJson());
        Assert.Equal(group.Expand(), back.Expand());
        Assert.Equal(group.Pbt!.Seed, back.Pbt!.Seed);
        Assert.Contains("\"search\": \"pbt\"", group.ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_fault_of_a_pbt_block_is_reported_at_its_path()
    {
        var errors = JsonErrors("""
            { "search": "pbt", "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": [0.1, 0.2]}}},
              "pbt": {"quantile": 0.9, "mode": "up", "perturbation_interval": 0, "resource": "steps", "patience": 2,
                      "mutations": {"optimizer.lr": {"factors": []}, "hidden": "twice"}} }
            """);

        Single(errors, "pbt.quantile", "must be a fraction in (0, 0.5], got 0.9");
        Single(errors, "pbt.metric", "is missing");
        Single(errors, "pbt.mode", "must be max or min, got \"up\"");
        Single(errors, "pbt.perturbation_interval", "must be a whole number >= 1");
        Single(errors, "pbt.resource", "must be epochs or chunks");
        Single(errors, "pbt.patience", "unknown key in pbt");
        Single(errors, "pbt.mutations.optimizer.lr", "must be {\"factors\": [positive numbers]}, \"resample\" or \"keep\"");
        Single(errors, "pbt.mutations.hidden", "must be {\"factors\": [positive numbers]}");
    }

    [Fact]
    public void Mutations_must_fit_the_population_and_pbt_takes_no_pruning_rule()
    {
        var errors = JsonErrors("""
            { "search": "pbt", "user_knobs": {"hidden": 8, "name": ["a", "b"]},
              "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": 0.1}}},
              "pbt": {"metric": "loss", "mode": "min",
                      "mutations": {"depth": "resample", "hidden": "resample", "name": {"factors": [2]}}} }
            """);
        Single(errors, "pbt.mutations.depth", "is not a knob of every config of the group; their knobs are: hidden, name, epochs");
        Single(errors, "pbt.mutations.hidden", "is resampled, so the group's configs must give it at least two values");
        Single(errors, "pbt.mutations.name", "is multiplied by factors, so it must be a number in every config, got \"a\"");

        Single(JsonErrors("""
            { "search": "pbt", "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": 0.1}}},
              "pbt": {"metric": "loss", "mode": "min", "mutations": {"optimizer.args.lr": {"factors": [2]}}} }
            """), "pbt", "a population needs at least 2 configs (give the group List knobs); this group has 1");
        Single(JsonErrors("""
            { "search": "pbt", "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": [0.1, 0.2]}}},
              "pruning": {"rule": "asha", "metric": "loss", "mode": "min"},
              "pbt": {"metric": "loss", "mode": "min", "mutations": {"optimizer.args.lr": {"factors": [2]}}} }
            """), "pruning", "cannot be combined with \"search\": \"pbt\"");
        Single(JsonErrors("""{ "search": "pbt", "train": {"epochs": 3, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": [0.1, 0.2]}}} }"""),
            "pbt", "is missing");
        Single(JsonErrors(WithTrain(ValidTrain, """, "pbt": {"metric": "loss"}""")), "pbt", "applies only to \"search\": \"pbt\"");
    }
}
