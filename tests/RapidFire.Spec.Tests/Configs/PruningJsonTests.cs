using RapidFire.Spec.Configs;
using static RapidFire.Spec.Tests.Configs.Samples;

namespace RapidFire.Spec.Tests.Configs;

public class PruningJsonTests
{
    private static string WithPruning(string pruning) => WithTrain(ValidTrain, $", \"pruning\": {pruning}");

    private static IReadOnlyList<ConfigError> PruningErrors(string pruning) => JsonErrors(WithPruning(pruning));

    [Fact]
    public void A_pruning_object_is_read_into_the_groups_rule()
    {
        var group = ConfigGroup.FromJson(WithPruning("""
            { "rule": "sha", "metric": "top1_accuracy", "mode": "max", "resource": "chunks", "eta": 2, "min_resource": 4 }
            """), "test.json");

        Assert.Equal(new PruningRule(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max)
        {
            Resource = PruningResource.Chunks,
            Eta = 2,
            MinResource = 4,
        }, group.Pruning);
        Assert.Equal("sha", group.Pruning!.EndedBy);
    }

    [Fact]
    public void Resource_eta_min_resource_and_min_samples_have_defaults()
    {
        var sha = ConfigGroup.FromJson(WithPruning("""{"rule": "asha", "metric": "loss", "mode": "min"}"""), "test.json").Pruning!;
        var median = ConfigGroup.FromJson(WithPruning("""{"rule": "median", "metric": "loss", "mode": "min"}"""), "test.json").Pruning!;

        Assert.Equal((PruningKind.AsyncSuccessiveHalving, MetricGoal.Min, PruningResource.Epochs, 3, 1),
            (sha.Kind, sha.Mode, sha.Resource, sha.Eta, sha.MinResource));
        Assert.Equal((PruningKind.MedianStopping, 1, 3), (median.Kind, median.MinResource, median.MinSamples));
        Assert.Equal(["sha", "asha", "median"],
            Enum.GetValues<PruningKind>().Select(k => new PruningRule(k, "loss", MetricGoal.Min).EndedBy));
    }

    [Fact]
    public void A_group_without_pruning_or_with_null_pruning_has_no_rule()
    {
        Assert.Null(ConfigGroup.FromJson(WithTrain(ValidTrain), "test.json").Pruning);
        Assert.Null(ConfigGroup.FromJson(WithPruning("null"), "test.json").Pruning);
        Assert.DoesNotContain("pruning", ConfigGroup.FromJson(WithTrain(ValidTrain), "test.json").ToJson(), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_fault_of_a_pruning_object_is_reported_at_once_at_its_path()
    {
        var errors = PruningErrors("""
            { "rule": "x", "mode": "up", "resource": "steps", "eta": 1, "min_resource": 0, "min_samples": 2.5, "patience": 3 }
            """);

        Single(errors, "pruning.rule", "must be sha, asha or median, got 'x'");
        Single(errors, "pruning.metric", "is missing");
        Single(errors, "pruning.mode", "must be max or min, got 'up'");
        Single(errors, "pruning.resource", "must be epochs or chunks, got 'steps'");
        Single(errors, "pruning.eta", "must be a whole number >= 2, got 1");
        Single(errors, "pruning.min_resource", "must be a whole number >= 1, got 0");
        Single(errors, "pruning.min_samples", "must be a whole number >= 1, got 2.5");
        Single(errors, "pruning.patience", "unknown key in pruning; expected one of: rule, metric, mode, resource, eta, min_resource, min_samples");
        Assert.Equal(8, errors.Count);
    }

    [Fact]
    public void Missing_rule_and_mode_and_values_of_the_wrong_type_are_named()
    {
        var errors = PruningErrors("""{ "metric": 5, "eta": "two" }""");

        Single(errors, "pruning.rule", "is missing: sha, asha or median");
        Single(errors, "pruning.metric", "must be a metric name");
        Single(errors, "pruning.mode", "is missing: max or min");
        Single(errors, "pruning.eta", "must be a whole number >= 2, got \"two\"");
        Assert.Equal(4, errors.Count);
    }

    [Fact]
    public void A_setting_the_rule_does_not_use_is_an_error()
    {
        Single(PruningErrors("""{"rule": "median", "metric": "loss", "mode": "min", "eta": 2}"""),
            "pruning.eta", "applies only to sha and asha (this rule is median)");
        Single(PruningErrors("""{"rule": "sha", "metric": "loss", "mode": "min", "min_samples": 5}"""),
            "pruning.min_samples", "applies only to median (this rule is sha)");
    }

    [Fact]
    public void Pruning_that_is_not_an_object_is_named()
    {
        Single(PruningErrors("\"sha\""), "pruning", "must be an object such as {\"rule\": \"sha\"");
    }

    [Fact]
    public void Pruning_faults_are_reported_with_the_groups_other_faults()
    {
        var errors = JsonErrors("""
            { "train": { "epochs": 0, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} },
              "pruning": { "rule": "sha", "metric": "loss", "mode": "min", "eta": 1 } }
            """);

        Single(errors, "train.epochs", ">= 1");
        Single(errors, "pruning.eta", "got 1");
    }

    [Fact]
    public void Only_the_top_level_object_carries_pruning_not_a_config_inside_a_list()
    {
        const string Item = """{ "train": { "epochs": 1, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} } """;
        const string Rule = """ "pruning": {"rule": "sha", "metric": "loss", "mode": "min"} """;

        var list = ConfigGroup.FromJson($$"""{ "search": "list", "configs": [{{Item}} }, {{Item}} }], {{Rule}} }""", "test.json");
        Assert.Equal(PruningKind.SuccessiveHalving, list.Pruning!.Kind);

        Single(JsonErrors($$"""[{{Item}} }, {{Item}}, {{Rule}} }]"""), "[1].pruning", "applies only to the whole group");
        Single(JsonErrors($$"""{ "search": "list", "configs": [{{Item}}, {{Rule}} }] }"""), "configs[0].pruning", "applies only to the whole group");
    }

    [Fact]
    public void A_rule_on_an_item_of_a_csharp_list_is_an_error_at_its_index()
    {
        var rule = new PruningRule(PruningKind.MedianStopping, "loss", MetricGoal.Min);
        var list = new ConfigList(Minimal(), ((ConfigGroup)Minimal()).WithPruning(rule));

        var error = Assert.Single(list.Validate());
        Assert.Equal("[1].pruning", error.Path);
    }

    [Fact]
    public void A_rule_built_in_csharp_is_attached_without_changing_the_group_and_validated_with_it()
    {
        ConfigGroup plain = Minimal();
        var pruned = plain.WithPruning(new PruningRule(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max) { Eta = 2 });

        Assert.Null(plain.Pruning);
        Assert.IsType<GridSearch>(pruned);
        Assert.Equal(2, pruned.Pruning!.Eta);
        Assert.Empty(pruned.Validate());
        Assert.Equal(plain.Expand().Select(c => c.ToJson()), pruned.Expand().Select(c => c.ToJson()));

        var bad = plain.WithPruning(new PruningRule(PruningKind.MedianStopping, " ", MetricGoal.Min) { Eta = 2, MinResource = 0, MinSamples = 0 });
        var errors = bad.Validate();
        Single(errors, "pruning.metric", "is missing");
        Single(errors, "pruning.eta", "applies only to sha and asha");
        Single(errors, "pruning.min_resource", "got 0");
        Single(errors, "pruning.min_samples", "got 0");
        Assert.Equal(4, errors.Count);
        Assert.Equal(errors, bad.Pruning!.Validate());
        Assert.Throws<ConfigException>(() => bad.Expand());
    }

    [Fact]
    public void Pruning_round_trips_through_json_for_every_kind_of_group()
    {
        var rules = new[]
        {
            new PruningRule(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max) { Eta = 2, MinResource = 2 },
            new PruningRule(PruningKind.AsyncSuccessiveHalving, "loss", MetricGoal.Min) { Resource = PruningResource.Chunks },
            new PruningRule(PruningKind.MedianStopping, "val loss", MetricGoal.Min) { MinResource = 3, MinSamples = 5 },
        };
        var groups = new ConfigGroup[] { new GridSearch(IssueTemplate()), new RandomSearch(Minimal(), samples: 3, seed: 4), new ConfigList(Minimal(), Minimal()) };

        foreach (var group in groups)
            foreach (var rule in rules)
            {
                var json = group.WithPruning(rule).ToJson();
                var back = ConfigGroup.FromJson(json, "test.json");
                Assert.Equal(rule, back.Pruning);
                Assert.Equal(json, back.ToJson());
            }
    }

    [Fact]
    public void Written_pruning_spells_out_the_settings_its_rule_uses()
    {
        var sha = ((ConfigGroup)Minimal()).WithPruning(new PruningRule(PruningKind.SuccessiveHalving, "top1_accuracy", MetricGoal.Max)).ToJson();
        var median = ((ConfigGroup)Minimal()).WithPruning(new PruningRule(PruningKind.MedianStopping, "loss", MetricGoal.Min)).ToJson();

        Assert.EndsWith(
            J("'pruning':{'rule':'sha','metric':'top1_accuracy','mode':'max','resource':'epochs','eta':3,'min_resource':1}}"),
            string.Concat(sha.Where(c => !char.IsWhiteSpace(c))), StringComparison.Ordinal);
        Assert.EndsWith(
            J("'pruning':{'rule':'median','metric':'loss','mode':'min','resource':'epochs','min_resource':1,'min_samples':3}}"),
            string.Concat(median.Where(c => !char.IsWhiteSpace(c))), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_top_level_key_lists_pruning_among_the_expected_keys()
    {
        var error = Single(JsonErrors(WithTrain(ValidTrain, ", \"prunning\": {}")), "prunning", "unknown top-level key");
        Assert.Contains("pruning", error.Message.Replace("prunning", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }
}
