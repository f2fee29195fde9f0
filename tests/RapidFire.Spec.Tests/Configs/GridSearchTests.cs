using RapidFire.Spec.Configs;
using static RapidFire.Spec.Tests.Configs.Samples;

namespace RapidFire.Spec.Tests.Configs;

public class GridSearchTests
{
    [Fact]
    public void Grid_expands_to_the_cartesian_product_of_list_knobs()
    {
        var leaves = ConfigGroup.FromJson(Samples.IssueJson, "issue.json").Expand();

        Assert.Equal(8, leaves.Count);
        var combos = leaves.Select(c => $"{c.Get<string>("model_type")} {c.BatchSize} {ConfigValue.ToJson(c.Optimizer.Args["lr"])}");
        Assert.Equal(
            [
                "mlp 32 0.001", "mlp 32 0.003", "mlp 64 0.001", "mlp 64 0.003",
                "cnn 32 0.001", "cnn 32 0.003", "cnn 64 0.001", "cnn 64 0.003",
            ],
            combos);
    }

    [Fact]
    public void Grid_leaf_is_a_flat_config_with_user_knobs_first_then_the_reserved_keys()
    {
        var leaf = ConfigGroup.FromJson(Samples.IssueJson, "issue.json").Expand()[0];

        Assert.Equal(
            J("{'model_type':'mlp','hidden':128,'epochs':3,'batch_size':32," +
              "'optimizer':{'name':'Adam','args':{'lr':0.001}}," +
              "'lr_scheduler':{'name':'StepLR','args':{'step_size':1,'gamma':0.9}}," +
              "'named_metrics':['top1_accuracy','top3_accuracy']}"),
            leaf.ToJson());
        Assert.Equal(3, leaf.Epochs);
        Assert.Equal("StepLR", leaf.LrScheduler!.Name);
        Assert.Equal(["top1_accuracy", "top3_accuracy"], leaf.NamedMetrics);
    }

    [Fact]
    public void Grid_leaf_omits_lr_scheduler_and_named_metrics_when_not_given()
    {
        var leaf = Assert.Single(new GridSearch(Samples.Minimal()).Expand());

        Assert.Equal("""{"epochs":1,"batch_size":16,"optimizer":{"name":"SGD","args":{"lr":0.1}}}""", leaf.ToJson());
    }

    [Fact]
    public void Grid_of_a_template_without_knobs_is_exactly_one_config()
    {
        Assert.Single(new GridSearch(Samples.Minimal()).Expand());
    }

    [Fact]
    public void Grid_expands_knobs_nested_in_user_knob_maps_and_in_the_optimizer_name()
    {
        var template = Samples.Minimal(optimizer: new ComponentTemplate(Knob.List("Adam", "AdamW"),
            new Dictionary<string, object?> { ["lr"] = 0.01 })) with
        {
            UserKnobs = new Dictionary<string, object?>
            {
                ["model"] = new Dictionary<string, object?> { ["depth"] = Knob.List(2, 4), ["act"] = "relu" },
            },
        };

        var leaves = new GridSearch(template).Expand();

        Assert.Equal(4, leaves.Count);
        Assert.Equal(["Adam", "AdamW", "Adam", "AdamW"], leaves.Select(l => l.Optimizer.Name));
        var model = (IReadOnlyDictionary<string, object?>)leaves[3]["model"]!;
        Assert.Equal(4L, model["depth"]);
        Assert.Equal("relu", model["act"]);
    }

    [Fact]
    public void Grid_over_whole_optimizers_expands_each_with_its_own_argument_knobs()
    {
        var template = Samples.Minimal(optimizer: Knob.List(
            new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = Knob.List(0.1, 0.01) }),
            new ComponentTemplate("SGD", new Dictionary<string, object?> { ["lr"] = 0.5, ["momentum"] = 0.9 })));

        var leaves = new GridSearch(template).Expand();

        Assert.Equal(
            ["""{"name":"Adam","args":{"lr":0.1}}""", """{"name":"Adam","args":{"lr":0.01}}""", """{"name":"SGD","args":{"lr":0.5,"momentum":0.9}}"""],
            leaves.Select(l => ConfigValue.ToJson(l[Config.OptimizerKey])));
    }

    [Fact]
    public void Grid_with_a_null_scheduler_option_gives_leaves_without_a_scheduler()
    {
        var template = Samples.Minimal() with
        {
            Train = Samples.Minimal().Train with
            {
                LrScheduler = Knob.List(null, new ComponentTemplate("ExponentialLR", new Dictionary<string, object?> { ["gamma"] = 0.5 })),
            },
        };

        var leaves = new GridSearch(template).Expand();

        Assert.Equal(2, leaves.Count);
        Assert.False(leaves[0].ContainsKey(Config.LrSchedulerKey));
        Assert.Equal("ExponentialLR", leaves[1].LrScheduler!.Name);
    }

    [Fact]
    public void Config_list_concatenates_its_items_in_order_and_a_plain_template_is_one_config()
    {
        var list = new ConfigList(
            Samples.Minimal(epochs: 5),
            new GridSearch(Samples.Minimal(batchSize: Knob.List(8, 16))),
            new RandomSearch(Samples.Minimal(epochs: Knob.IntRange(1, 3)), samples: 2, seed: 1));

        var leaves = list.Expand();

        Assert.Equal(5, leaves.Count);
        Assert.Equal(5, leaves[0].Epochs);
        Assert.Equal([8, 16], leaves.Skip(1).Take(2).Select(l => l.BatchSize));
        Assert.All(leaves.Skip(3), l => Assert.InRange(l.Epochs, 1, 3));
    }

    [Fact]
    public void Builder_and_json_give_the_same_leaves()
    {
        var fromJson = ConfigGroup.FromJson(Samples.IssueJson, "issue.json").Expand();
        var fromBuilder = new GridSearch(Samples.IssueTemplate()).Expand();

        Assert.Equal(fromJson.Select(c => c.ToJson()), fromBuilder.Select(c => c.ToJson()));
    }

    [Fact]
    public void A_literal_list_is_one_value_and_not_a_knob()
    {
        var json = """
            { "user_knobs": { "layers": {"value": [64, 32]}, "shapes": [[1, 2], [3]] },
              "train": { "epochs": 1, "batch_size": 4, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} } }
            """;

        var leaves = ConfigGroup.FromJson(json, "t.json").Expand();

        Assert.Equal(2, leaves.Count); // shapes: an array inside a List is one literal option
        Assert.Equal("[64,32]", ConfigValue.ToJson(leaves[0]["layers"]));
        Assert.Equal(["[1,2]", "[3]"], leaves.Select(l => ConfigValue.ToJson(l["shapes"])));
    }
}
