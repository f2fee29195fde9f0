using RapidFire.Spec.Configs;
using static RapidFire.Spec.Tests.Configs.Samples;

namespace RapidFire.Spec.Tests.Configs;

public class ValidationTests
{
    private static IReadOnlyList<ConfigError> TrainErrors(string train, string extra = "") => JsonErrors(WithTrain(train, extra));

    [Fact]
    public void Missing_epochs_batch_size_and_optimizer_are_each_named()
    {
        var errors = JsonErrors("""{ "user_knobs": {"hidden": 8}, "train": {} }""");

        Single(errors, "train.epochs", "is missing");
        Single(errors, "train.batch_size", "is missing");
        Single(errors, "train.optimizer", "is missing");
        Assert.Equal(3, errors.Count);
    }

    [Theory]
    [InlineData("1e999", "is Infinity")]
    [InlineData("-1e999", "is -Infinity")]
    public void A_number_too_large_to_be_finite_is_refused_at_its_knob(string number, string gist)
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adam", "args": {"lr": """ + number + "}}");

        var error = Single(errors, "train.optimizer.args.lr", gist);
        Assert.EndsWith("a knob's number must be finite", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Optimizer_arguments_torchsharp_refuses_are_refused_at_validation_naming_each()
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adam", "args": {"lr": [0.01, -0.1], "betas": {"value": [0.9, 1.0]}, "weight_decay": -1}} """);

        Single(errors, "train.optimizer.args.lr", "must be at least 0, got -0.1");
        Single(errors, "train.optimizer.args.betas[1]", "must be at least 0 and below 1, got 1");
        Single(errors, "train.optimizer.args.weight_decay", "must be at least 0, got -1");
    }

    [Fact]
    public void A_non_finite_number_given_in_csharp_is_refused_naming_its_knob()
    {
        var e = Assert.Throws<ConfigException>(() => new Config([new("dropout", double.NaN)]));
        Assert.Equal("dropout", Assert.Single(e.Errors).Path);
    }

    [Fact]
    public void Unknown_optimizer_name_lists_the_known_optimizers()
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adamm", "args": {"lr": 0.1}} """);

        var error = Single(errors, "train.optimizer.name", "unknown optimizer 'Adamm'");
        Assert.Contains("Adam, Adamax, AdamW", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_scheduler_name_lists_the_known_schedulers()
    {
        var errors = TrainErrors(ValidTrain + """, "lr_scheduler": {"name": "StepLRR", "args": {"step_size": 1}} """);

        var error = Single(errors, "train.lr_scheduler.name", "unknown learning-rate scheduler 'StepLRR'");
        Assert.Contains("StepLR", error.Message, StringComparison.Ordinal);
        Assert.Contains("OneCycleLR", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_optimizer_argument_is_named_with_the_accepted_ones()
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adam", "args": {"lrate": 0.1}} """);

        var error = Single(errors, "train.optimizer.args.lrate", "Adam has no argument 'lrate'");
        Assert.Contains("lr, beta1, beta2, betas, eps, weight_decay, amsgrad, maximize", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_scheduler_argument_and_missing_required_scheduler_argument_are_named()
    {
        var errors = TrainErrors(ValidTrain + """, "lr_scheduler": {"name": "StepLR", "args": {"gama": 0.5}} """);

        Single(errors, "train.lr_scheduler.args.gama", "StepLR has no argument 'gama'");
        Single(errors, "train.lr_scheduler.args.step_size", "is missing: StepLR needs step_size");
    }

    [Fact]
    public void Optimizer_argument_of_the_wrong_type_is_named()
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adam", "args": {"lr": "fast", "amsgrad": 1}} """);

        Single(errors, "train.optimizer.args.lr", "expected a number, got \"fast\"");
        Single(errors, "train.optimizer.args.amsgrad", "expected true or false, got 1");
    }

    [Fact]
    public void Optimizer_that_is_not_a_name_and_args_object_is_rejected()
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adam", "arg": {"lr": 0.1}} """);

        Single(errors, "train.optimizer.arg", "takes only \"name\" and \"args\"");
    }

    [Fact]
    public void Range_inside_a_grid_is_rejected_at_its_knob_path()
    {
        var errors = TrainErrors(""" "epochs": 1, "batch_size": 2, "optimizer": {"name": "Adam", "args": {"lr": {"range": [0.001, 0.1], "log": true}}} """);

        Single(errors, "train.optimizer.args.lr", "a Range cannot be expanded by a grid search");
        Assert.Single(errors);
    }

    [Fact]
    public void Empty_list_is_rejected()
    {
        var errors = TrainErrors(ValidTrain, """, "user_knobs": {"hidden": []}""");

        Single(errors, "user_knobs.hidden", "an empty List has no option to try");
    }

    [Theory]
    [InlineData("0", "train.batch_size", "must be a whole number >= 1, got 0")]
    [InlineData("-4", "train.batch_size", "must be a whole number >= 1, got -4")]
    [InlineData("1.5", "train.batch_size", "must be a whole number >= 1, got 1.5")]
    [InlineData("\"32\"", "train.batch_size", "must be a whole number >= 1, got \"32\"")]
    [InlineData("[32, 0]", "train.batch_size[1]", "must be a whole number >= 1, got 0")]
    public void Bad_batch_size_is_rejected_also_inside_a_list(string batchSize, string path, string gist)
    {
        var errors = TrainErrors($$$""" "epochs": 1, "batch_size": {{{batchSize}}}, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} """);

        Single(errors, path, gist);
    }

    [Theory]
    [InlineData("\"accumulate_grad_batches\": 0", "train.accumulate_grad_batches", "must be a whole number >= 1, got 0")]
    [InlineData("\"accumulate_grad_batches\": [2, 1.5]", "train.accumulate_grad_batches[1]", "must be a whole number >= 1, got 1.5")]
    [InlineData("\"max_grad_norm\": 0", "train.max_grad_norm", "must be a number > 0 (the total gradient norm to clip to), got 0")]
    [InlineData("\"max_grad_norm\": [1.0, -2]", "train.max_grad_norm[1]", "must be a number > 0 (the total gradient norm to clip to), got -2")]
    [InlineData("\"max_grad_norm\": \"big\"", "train.max_grad_norm", "must be a number > 0 (the total gradient norm to clip to), got \"big\"")]
    public void Bad_accumulation_and_clipping_knobs_are_named_at_their_path(string knob, string path, string gist)
    {
        var errors = TrainErrors($$$""" "epochs": 1, "batch_size": 8, {{{knob}}}, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} """);

        Single(errors, path, gist);
    }

    [Fact]
    public void Accumulation_and_clipping_are_train_knobs_a_grid_expands_and_a_leaf_reads()
    {
        var leaves = ConfigGroup.FromJson(WithTrain(""" "epochs": 1, "batch_size": 8, "accumulate_grad_batches": [1, 4], "max_grad_norm": 0.5, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} """), "g.json").Expand();

        Assert.Equal([1, 4], leaves.Select(c => c.AccumulateGradBatches));
        Assert.All(leaves, c => Assert.Equal(0.5, c.MaxGradNorm));
        Assert.Equal(["epochs", "batch_size", "accumulate_grad_batches", "max_grad_norm", "optimizer"], leaves[1].Keys.Take(5));
        var plain = ConfigGroup.FromJson(WithTrain(ValidTrain), "plain.json").Expand()[0];
        Assert.Equal((1, (double?)null), (plain.AccumulateGradBatches, plain.MaxGradNorm));
        Assert.False(plain.ContainsKey("accumulate_grad_batches"));
        Single(JsonErrors(WithTrain(ValidTrain, """, "user_knobs": {"max_grad_norm": 1}""")), "user_knobs.max_grad_norm", "is a reserved key");
    }

    [Fact]
    public void Bad_epochs_are_rejected_also_from_a_list_or_a_range()
    {
        Single(TrainErrors(""" "epochs": [2, 0.5], "batch_size": 2, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} """),
            "train.epochs[1]", "must be a whole number >= 1, got 0.5");
        Single(new RandomSearch(Minimal(epochs: Knob.IntRange(0, 3)), 4).Validate(),
            "train.epochs", "must be a whole number >= 1, but the Range starts at 0");
        Single(new RandomSearch(Minimal(batchSize: Knob.Range(8, 64)), 4).Validate(),
            "train.batch_size", "a Range for batch_size must have dtype int");
    }

    [Fact]
    public void Bad_ranges_are_rejected_with_their_gist()
    {
        var json = """
            { "search": "random", "samples": 3,
              "user_knobs": { "a": {"range": [5, 1]}, "b": {"range": [0, 1], "log": true},
                              "c": {"range": [1, 2], "dtype": "double"}, "d": {"range": [1, 2], "step": 0},
                              "e": {"range": [1.5, 4], "dtype": "int"}, "f": {"range": [1], "lo": 2} },
              "train": { "epochs": 1, "batch_size": 2, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} } }
            """;

        var errors = JsonErrors(json);

        Single(errors, "user_knobs.a", "starts at 5 but ends at 1");
        Single(errors, "user_knobs.b", "a log Range must start above 0");
        Single(errors, "user_knobs.c.dtype", "must be \"int\" or \"float\", got \"double\"");
        Single(errors, "user_knobs.d.step", "must be > 0, got 0");
        Single(errors, "user_knobs.e", "an int Range needs whole-number bounds");
        Single(errors, "user_knobs.f.range", "must be [start, end]");
        Single(errors, "user_knobs.f.lo", "unknown key in a range");
        Assert.Equal(7, errors.Count);
    }

    [Fact]
    public void Random_search_needs_at_least_one_sample()
    {
        Single(JsonErrors(WithTrain(ValidTrain, """, "search": "random", "samples": 0""")), "samples", "must be >= 1");
        Single(JsonErrors(WithTrain(ValidTrain, """, "search": "random", "seed": 3""")), "samples", "is missing");
        Single(new RandomSearch(Minimal(), samples: -1).Validate(), "samples", "must be >= 1");
    }

    [Fact]
    public void Unknown_named_metric_is_named_by_its_index()
    {
        var errors = JsonErrors(WithTrain(ValidTrain, """, "named_metrics": ["top1_accuracy", "f1_score", 3]"""));

        var error = Single(errors, "named_metrics[1]", "unknown named metric 'f1_score'");
        Assert.Contains("top1_accuracy", error.Message, StringComparison.Ordinal);
        Single(errors, "named_metrics[2]", "must be a metric name");
    }

    [Fact]
    public void Unknown_top_level_and_train_keys_are_rejected()
    {
        var errors = JsonErrors("""
            { "user_knob": {"a": 1}, "samples": 4,
              "train": { "epoch": 1, "epochs": 1, "batch_size": 2, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} } }
            """);

        Single(errors, "user_knob", "unknown top-level key");
        Single(errors, "samples", "applies only to \"search\": \"random\"");
        Single(errors, "train.epoch", "unknown key in train");
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void User_knob_named_like_a_reserved_key_is_rejected()
    {
        var errors = JsonErrors(WithTrain(ValidTrain, """, "user_knobs": {"epochs": 3, "named_metrics": ["top1_accuracy"]}"""));

        Single(errors, "user_knobs.epochs", "'epochs' is a reserved key, not a user knob; set it under \"train\"");
        Single(errors, "user_knobs.named_metrics", "reserved key");
    }

    [Fact]
    public void Unknown_search_kind_is_rejected()
    {
        Single(JsonErrors(WithTrain(ValidTrain, """, "search": "bayes" """)), "search", "must be \"grid\", \"random\", \"list\" or \"pbt\"");
    }

    [Fact]
    public void Malformed_json_names_the_file_line_and_position()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigGroup.FromJson("{\n  \"train\": {\n    \"epochs\": 1,,\n  }\n}", "exp/configs.json"));

        var error = Assert.Single(e.Errors);
        Assert.StartsWith("exp/configs.json line 3, position 17: malformed JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loading_a_missing_file_names_it()
    {
        var path = Path.Combine(Path.GetTempPath(), $"rapidfire-missing-{Guid.NewGuid():N}.json");

        var e = Assert.Throws<ConfigException>(() => ConfigGroup.Load(path));

        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_error_of_a_document_is_reported_at_once_and_each_only_once()
    {
        var errors = JsonErrors("""
            { "user_knobs": { "hidden": [] },
              "train": { "epochs": 0, "batch_size": [8, 16],
                         "optimizer": { "name": "Adam", "args": { "lr": [0.1, 0.2], "lrr": 1 } },
                         "lr_scheduler": { "name": "StepLR" } },
              "named_metrics": ["top0_accuracy"] }
            """);

        Assert.Equal(
            [
                "user_knobs.hidden", "train.epochs", "train.optimizer.args.lrr",
                "train.lr_scheduler.args.step_size", "named_metrics[0]",
            ],
            errors.Select(e => e.Path));
    }

    [Fact]
    public void Errors_in_a_config_list_carry_the_index_of_their_config()
    {
        var valid = WithTrain(ValidTrain);
        var bad = WithTrain(""" "epochs": 1, "batch_size": 0, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} """);

        Single(JsonErrors($"[{valid}, {bad}]"), "[1].train.batch_size", "got 0");
        Single(JsonErrors($$"""{ "search": "list", "configs": [{{bad}}, {{valid}}] }"""), "configs[0].train.batch_size", "got 0");
        Single(new ConfigList(Minimal(), Minimal(batchSize: 0)).Validate(), "[1].train.batch_size", "got 0");
    }

    [Fact]
    public void Each_option_of_a_whole_optimizer_list_is_checked_at_its_own_path()
    {
        var errors = new GridSearch(Minimal(optimizer: Knob.List(
            new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = 0.1 }),
            new ComponentTemplate("Sgd2", new Dictionary<string, object?> { ["lr"] = 0.1 })))).Validate();

        Single(errors, "train.optimizer[1].name", "unknown optimizer 'Sgd2'");
        Assert.Single(errors);
    }

    [Fact]
    public void Expand_of_a_bad_builder_group_throws_with_every_error()
    {
        var template = new ConfigTemplate
        {
            UserKnobs = new Dictionary<string, object?> { ["x"] = Knob.Range(0, 1) },
            Train = new TrainTemplate { Epochs = 2, BatchSize = Knob.List() },
        };

        var e = Assert.Throws<ConfigException>(() => new GridSearch(template).Expand());

        Assert.Equal(["train.optimizer", "user_knobs.x", "train.batch_size"], e.Errors.Select(x => x.Path));
        Assert.Contains("user_knobs.x: a Range cannot be expanded by a grid search", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_key_given_twice_and_a_literal_with_extra_keys_are_rejected()
    {
        var errors = JsonErrors(WithTrain(ValidTrain, """, "user_knobs": {"a": 1, "a": 2, "b": {"value": [1], "note": "x"}}"""));

        Single(errors, "user_knobs.a", "is given twice");
        Single(errors, "user_knobs.b", "marks a literal and takes no other key (found: note)");
    }

    [Fact]
    public void Named_metrics_inside_train_points_to_the_top_level()
    {
        Single(JsonErrors(WithTrain(ValidTrain + """, "named_metrics": ["top1_accuracy"] """)),
            "train.named_metrics", "belongs at the top level");
    }

    [Fact]
    public void A_knob_inside_a_csharp_array_cannot_be_written_as_json()
    {
        var group = new GridSearch(Minimal() with
        {
            UserKnobs = new Dictionary<string, object?> { ["sizes"] = new object[] { 1, Knob.List(2, 3) } },
        });

        Assert.Equal(2, group.Expand().Count); // it still expands in C#
        var e = Assert.Throws<ConfigException>(() => group.ToJson());
        Assert.Equal("user_knobs.sizes", Assert.Single(e.Errors).Path);
    }
}
