using RapidFire.Spec.Configs;

namespace RapidFire.Spec.Tests.Configs;

/// <summary>The issue's example, as JSON and as the builder writes it, plus helpers to read errors.</summary>
internal static class Samples
{
    public const string IssueJson = """
        { "search": "grid",
          "user_knobs": { "model_type": ["mlp", "cnn"], "hidden": 128 },
          "train": { "epochs": 3, "batch_size": [32, 64],
                     "optimizer": { "name": "Adam", "args": { "lr": [0.001, 0.003] } },
                     "lr_scheduler": { "name": "StepLR", "args": { "step_size": 1, "gamma": 0.9 } } },
          "named_metrics": ["top1_accuracy", "top3_accuracy"] }
        """;

    public static ConfigTemplate IssueTemplate() => new()
    {
        UserKnobs = new Dictionary<string, object?> { ["model_type"] = Knob.List("mlp", "cnn"), ["hidden"] = 128 },
        Train = new TrainTemplate
        {
            Epochs = 3,
            BatchSize = Knob.List(32, 64),
            Optimizer = new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = Knob.List(0.001, 0.003) }),
            LrScheduler = new ComponentTemplate("StepLR", new Dictionary<string, object?> { ["step_size"] = 1, ["gamma"] = 0.9 }),
        },
        NamedMetrics = ["top1_accuracy", "top3_accuracy"],
    };

    /// <summary>JSON written with single quotes, for short expected strings.</summary>
    public static string J(string text) => text.Replace('\'', '"');

    /// <summary>A minimal valid template whose train section the tests change.</summary>
    public static ConfigTemplate Minimal(object? epochs = null, object? batchSize = null, object? optimizer = null) => new()
    {
        Train = new TrainTemplate
        {
            Epochs = epochs ?? 1,
            BatchSize = batchSize ?? 16,
            Optimizer = optimizer ?? new ComponentTemplate("SGD", new Dictionary<string, object?> { ["lr"] = 0.1 }),
        },
    };

    /// <summary>The errors a JSON document is rejected with (fails the test when it is accepted).</summary>
    public static IReadOnlyList<ConfigError> JsonErrors(string json, string source = "test.json")
    {
        var e = Assert.Throws<ConfigException>(() => ConfigGroup.FromJson(json, source));
        return e.Errors;
    }

    /// <summary>Asserts that exactly one error sits at <paramref name="path"/> and that its message says <paramref name="gist"/>.</summary>
    public static ConfigError Single(IReadOnlyList<ConfigError> errors, string path, string gist)
    {
        var at = errors.Where(e => e.Path == path).ToList();
        Assert.True(at.Count == 1, $"expected one error at '{path}', got:\n{string.Join("\n", errors)}");
        Assert.Contains(gist, at[0].Message, StringComparison.Ordinal);
        return at[0];
    }

    /// <summary>A train section wrapped into a whole grid document.</summary>
    public static string WithTrain(string train, string extra = "") =>
        $$"""{ "train": {{{train}}}{{extra}} }""";

    public const string ValidTrain = """ "epochs": 1, "batch_size": 16, "optimizer": {"name": "SGD", "args": {"lr": 0.1}} """;
}
