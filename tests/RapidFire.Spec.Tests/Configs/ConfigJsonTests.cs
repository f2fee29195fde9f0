using RapidFire.Spec.Configs;
using static RapidFire.Spec.Tests.Configs.Samples;

namespace RapidFire.Spec.Tests.Configs;

public class ConfigJsonTests
{
    [Fact]
    public void A_group_written_to_a_json_file_loads_back_with_the_same_leaves()
    {
        var group = new ConfigList(
            Samples.IssueTemplate(),
            new RandomSearch(Samples.Minimal(
                epochs: Knob.IntRange(1, 3),
                optimizer: new ComponentTemplate(Knob.List("Adam", "RMSprop"),
                    new Dictionary<string, object?> { ["lr"] = Knob.Range(1e-4, 1e-2, log: true), ["eps"] = 1e-8 })) with
            {
                UserKnobs = new Dictionary<string, object?>
                {
                    ["layers"] = new[] { 64, 32 },
                    ["dropout"] = Knob.Range(0.0, 0.5, step: 0.1),
                    ["odd"] = new Dictionary<string, object?> { ["range"] = 5 },
                    ["nested"] = new Dictionary<string, object?> { ["width"] = Knob.List(1, 2), ["name"] = null },
                },
            }, samples: 6, seed: 11));
        var path = Path.Combine(Path.GetTempPath(), $"rapidfire-configs-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, group.ToJson());
            var loaded = ConfigGroup.Load(path);

            Assert.Equal(group.Expand().Select(c => c.ToJson()), loaded.Expand().Select(c => c.ToJson()));
            Assert.Equal(group.ToJson(), loaded.ToJson());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Written_json_uses_the_documented_format()
    {
        var json = new RandomSearch(Samples.Minimal(batchSize: Knob.IntRange(8, 64, log: true)) with
        {
            UserKnobs = new Dictionary<string, object?> { ["layers"] = new[] { 64, 32 }, ["act"] = Knob.List("relu", "gelu") },
            NamedMetrics = ["top1_accuracy"],
        }, samples: 4, seed: 9).ToJson();

        var compact = string.Concat(json.Where(c => !char.IsWhiteSpace(c)));
        Assert.Equal(
            J("{'search':'random','samples':4,'seed':9,'user_knobs':{'layers':{'value':[64,32]},'act':['relu','gelu']}," +
              "'train':{'epochs':1,'batch_size':{'range':[8,64],'dtype':'int','log':true}," +
              "'optimizer':{'name':'SGD','args':{'lr':0.1}}},'named_metrics':['top1_accuracy']}"),
            compact);
    }

    [Fact]
    public void A_top_level_array_is_a_hand_picked_list_of_configs_and_groups()
    {
        var json = """
            [ { "user_knobs": {"model": "mlp"}, "train": { "epochs": 2, "batch_size": 32, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} } },
              { "search": "random", "samples": 2, "seed": 5,
                "user_knobs": {"model": "cnn"},
                "train": { "epochs": 1, "batch_size": {"range": [16, 64], "dtype": "int", "step": 16},
                           "optimizer": {"name": "AdamW", "args": {"lr": 0.001, "betas": {"value": [0.9, 0.95]}}} } } ]
            """;

        var leaves = ConfigGroup.FromJson(json, "list.json").Expand();

        Assert.Equal(["mlp", "cnn", "cnn"], leaves.Select(l => l.Get<string>("model")));
        Assert.All(leaves.Skip(1), l => Assert.Contains(l.BatchSize, new[] { 16, 32, 48, 64 }));
    }

    [Fact]
    public void A_list_argument_written_as_a_plain_array_is_a_knob_and_the_error_says_how_to_write_a_literal()
    {
        var errors = Samples.JsonErrors(Samples.WithTrain("""
            "epochs": 1, "batch_size": 2,
            "optimizer": {"name": "Adam", "args": {"betas": [0.9, 0.99]}},
            "lr_scheduler": {"name": "MultiStepLR", "args": {"milestones": [2, 4]}}
            """));

        var betas = errors.Where(e => e.Path == "train.optimizer.args.betas").ToList();
        Assert.Equal(2, betas.Count); // one per option of the List knob [0.9, 0.99]
        Assert.All(betas, e => Assert.Contains("write {\"value\": [...]} for a single list value", e.Message, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Path == "train.lr_scheduler.args.milestones"
            && e.Message.StartsWith("expected a list of whole numbers, got 2 (in JSON an array is a List knob", StringComparison.Ordinal));
    }

    [Fact]
    public void Search_defaults_to_grid()
    {
        var group = ConfigGroup.FromJson(Samples.WithTrain(Samples.ValidTrain), "g.json");

        Assert.IsType<GridSearch>(group);
    }

    [Fact]
    public void Named_metrics_array_is_literal_and_value_wrapper_is_accepted_there_too()
    {
        var plain = ConfigGroup.FromJson(Samples.WithTrain(Samples.ValidTrain, """, "named_metrics": ["top1_accuracy", "top5_accuracy"]"""), "a");
        var wrapped = ConfigGroup.FromJson(Samples.WithTrain(Samples.ValidTrain, """, "named_metrics": {"value": ["top1_accuracy", "top5_accuracy"]}"""), "b");

        var leaf = Assert.Single(plain.Expand());
        Assert.Equal(["top1_accuracy", "top5_accuracy"], leaf.NamedMetrics);
        Assert.Equal(leaf, Assert.Single(wrapped.Expand()));
    }

    [Fact]
    public void Comments_and_trailing_commas_are_allowed()
    {
        var json = """
            { // a grid over two learning rates
              "train": { "epochs": 1, "batch_size": 2,
                         "optimizer": {"name": "sgd", "args": {"lr": [0.1, 0.2,]}}, },
            }
            """;

        Assert.Equal(2, ConfigGroup.FromJson(json, "c.json").Expand().Count);
    }

    [Fact]
    public void Whole_and_real_numbers_keep_their_type_in_the_leaf()
    {
        var leaf = ConfigGroup.FromJson(Samples.WithTrain(Samples.ValidTrain, """, "user_knobs": {"a": 1, "b": 1.0, "c": 1e-3}"""), "n").Expand()[0];

        Assert.IsType<long>(leaf["a"]);
        Assert.IsType<double>(leaf["b"]);
        Assert.Equal(0.001, leaf["c"]);
    }
}
