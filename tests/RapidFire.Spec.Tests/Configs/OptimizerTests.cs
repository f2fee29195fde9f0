using RapidFire.Spec.Configs;
using RapidFire.Spec.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Configs;

public class OptimizerTests
{
    private static NamedComponent Spec(string name, params (string Key, object? Value)[] args) =>
        new(name, args.ToDictionary(a => a.Key, a => ConfigValue.Normalize(a.Value, a.Key)));

    [Fact]
    public void Every_torch_optimizer_is_known_by_name()
    {
        foreach (var name in new[] { "SGD", "Adam", "AdamW", "RMSProp", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop", "LBFGS" })
            Assert.Contains(name, Optimizers.Names);
    }

    [Fact]
    public void Every_configurable_torch_scheduler_is_known_by_name()
    {
        foreach (var name in new[] { "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR", "CyclicLR", "LinearLR", "ConstantLR", "PolynomialLR", "ReduceLROnPlateau" })
            Assert.Contains(name, LrSchedulers.Names);
        Assert.DoesNotContain("LambdaLR", LrSchedulers.Names);
    }

    [Theory]
    [InlineData("RMSprop")]
    [InlineData("rmsprop")]
    [InlineData("adamw")]
    [InlineData("sgd")]
    public void Names_match_case_insensitively(string name)
    {
        Assert.Empty(Optimizers.Validate(Spec(name, ("lr", 0.01)), "train.optimizer"));
    }

    [Fact]
    public void Pytorch_argument_spellings_bind_to_torchsharp_parameters()
    {
        Assert.Empty(Optimizers.Validate(Spec("SGD", ("lr", 0.1), ("momentum", 0.9), ("nesterov", true)), "train.optimizer"));
        Assert.Empty(Optimizers.Validate(Spec("Adam", ("lr", 1e-3), ("betas", new[] { 0.9, 0.98 }), ("weight_decay", 0)), "train.optimizer"));
        Assert.Empty(LrSchedulers.Validate(Spec("CosineAnnealingLR", ("t_max", 10)), "train.lr_scheduler"));
        Assert.Empty(LrSchedulers.Validate(Spec("MultiStepLR", ("milestones", new[] { 2, 4 }), ("gamma", 0.5)), "train.lr_scheduler"));
        Assert.Empty(LrSchedulers.Validate(Spec("OneCycleLR", ("max_lr", 0.1), ("total_steps", 100), ("anneal_strategy", "linear")), "train.lr_scheduler"));
        Assert.Empty(LrSchedulers.Validate(Spec("CyclicLR", ("base_lr", new[] { 0.01 }), ("max_lr", new[] { 0.1 }), ("mode", "exp_range")), "train.lr_scheduler"));
    }

    [Fact]
    public void Sgd_without_a_learning_rate_reports_the_missing_lr()
    {
        var error = Assert.Single(Optimizers.Validate(Spec("SGD", ("momentum", 0.9)), "train.optimizer"));

        Assert.Equal("train.optimizer.args.lr", error.Path);
        Assert.Contains("SGD needs lr", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_types_are_reported_per_argument()
    {
        var errors = LrSchedulers.Validate(Spec("StepLR", ("step_size", 1.5), ("gamma", "high")), "train.lr_scheduler");

        Assert.Equal(["train.lr_scheduler.args.step_size", "train.lr_scheduler.args.gamma"], errors.Select(e => e.Path));
        Assert.Contains("expected a whole number, got 1.5", errors[0].Message, StringComparison.Ordinal);
        var enumError = Assert.Single(LrSchedulers.Validate(Spec("OneCycleLR", ("max_lr", 0.1), ("total_steps", 10), ("anneal_strategy", "cubic")), "s"));
        Assert.Contains("one of cos, linear", enumError.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_scheduler_that_needs_a_function_cannot_come_from_a_config()
    {
        var error = Assert.Single(LrSchedulers.Validate(Spec("LambdaLR"), "train.lr_scheduler"));

        Assert.Equal("train.lr_scheduler.name", error.Path);
        Assert.Contains("cannot be set up from a config", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Adam_is_created_with_the_learning_rate_from_its_args()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(4, 2);

        using var optimizer = Optimizers.Create(Spec("Adam", ("lr", 0.003), ("betas", new[] { 0.8, 0.99 })), model.parameters());

        // TorchSharp's Adam, as the race-free subclass the catalog makes (RaceFreeOptimizerTests).
        Assert.IsAssignableFrom<TorchSharp.Modules.Adam>(optimizer);
        Assert.IsType<RaceFreeOptimizers.Adam>(optimizer);
        Assert.Equal(0.003, optimizer.ParamGroups.First().LearningRate, 12);
    }

    [Fact]
    public void Sgd_and_rmsprop_are_created_from_pytorch_style_names()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(4, 2);

        using var sgd = Optimizers.Create(Spec("sgd", ("lr", 0.5), ("momentum", 0.9)), model.parameters());
        using var rms = Optimizers.Create(Spec("RMSprop", ("lr", 0.01), ("alpha", 0.9)), model.parameters());

        Assert.Equal(0.5, sgd.ParamGroups.First().LearningRate, 12);
        Assert.IsAssignableFrom<TorchSharp.Modules.RMSProp>(rms);
        Assert.IsType<RaceFreeOptimizers.RMSProp>(rms);
    }

    [Fact]
    public void Step_lr_changes_the_learning_rate_after_step_size_epochs()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(4, 2);
        using var optimizer = Optimizers.Create(Spec("SGD", ("lr", 0.1)), model.parameters());
        var scheduler = LrSchedulers.Create(Spec("StepLR", ("step_size", 1), ("gamma", 0.5)), optimizer);

        optimizer.step();
        scheduler.step();

        Assert.Equal(0.05, optimizer.ParamGroups.First().LearningRate, 12);
    }

    [Fact]
    public void Multi_step_lr_gets_its_milestones_as_a_list()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(4, 2);
        using var optimizer = Optimizers.Create(Spec("SGD", ("lr", 1.0)), model.parameters());
        var scheduler = LrSchedulers.Create(Spec("MultiStepLR", ("milestones", new[] { 2 }), ("gamma", 0.1)), optimizer);

        var rates = new List<double>();
        for (var epoch = 0; epoch < 3; epoch++)
        {
            optimizer.step();
            scheduler.step();
            rates.Add(optimizer.ParamGroups.First().LearningRate);
        }

        Assert.Equal([1.0, 0.1, 0.1], rates.Select(r => Math.Round(r, 10)));
    }

    [Fact]
    public void Create_rejects_a_bad_spec_with_a_config_exception()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(4, 2);

        var e = Assert.Throws<ConfigException>(() => Optimizers.Create(Spec("Adam", ("learning", 0.1)), model.parameters()));

        Assert.Equal("train.optimizer.args.learning", Assert.Single(e.Errors).Path);
    }

    [Fact]
    public void Every_leaf_of_the_issue_example_creates_its_optimizer_and_scheduler()
    {
        TorchNative.EnsureLoaded();
        using var model = nn.Linear(4, 2);

        foreach (var leaf in ConfigGroup.FromJson(Samples.IssueJson, "issue.json").Expand())
        {
            using var optimizer = Optimizers.Create(leaf.Optimizer, model.parameters());
            LrSchedulers.Create(leaf.LrScheduler!, optimizer);
            Assert.Equal(leaf.Optimizer.Args["lr"], optimizer.ParamGroups.First().LearningRate);
        }
    }
}
