using TorchSharp;
using TorchSharp.Modules;

namespace RapidFire.Spec.Configs;

/// <summary>
/// Creates any optimizer of <c>TorchSharp.torch.optim</c> (SGD, Adam, AdamW, RMSProp, Adagrad, Adadelta, Adamax,
/// NAdam, RAdam, ASGD, Rprop, LBFGS, ...) from a config's <c>{"name", "args"}</c>, found by reflection over the
/// public static factories of <see cref="RaceFreeOptim"/>, which mirror <c>torch.optim</c>'s (same names, parameters
/// and defaults) and make TorchSharp's optimizers with a step that cannot race the finalizer
/// (<see cref="RaceFreeOptimizers"/>): bit-identical to TorchSharp's, with the same state dicts.
/// </summary>
/// <remarks>
/// Names match case-insensitively (PyTorch's <c>RMSprop</c> finds TorchSharp's <c>RMSProp</c>). Arguments bind by
/// parameter name, case-insensitively with underscores ignored, with PyTorch's spellings accepted: <c>lr</c> (also
/// for SGD, whose TorchSharp parameter is <c>learningRate</c>), <c>betas: [b1, b2]</c> for <c>beta1</c> and
/// <c>beta2</c>. Numbers convert to the parameter's type (a whole-number real to an integer), lists to the
/// parameter's collection type, strings to enums. Where overloads differ, the one the arguments fit is used.
/// </remarks>
public static class Optimizers
{
    /// <summary>The default knob path of the optimizer in messages.</summary>
    public const string DefaultPath = "train.optimizer";

    private static readonly Lazy<ComponentCatalog> Catalog = new(() => new ComponentCatalog(
        typeof(RaceFreeOptim), typeof(IEnumerable<Parameter>), typeof(torch.optim.Optimizer), "optimizer"));

    /// <summary>The optimizer names a config can use, in TorchSharp's spelling.</summary>
    public static IReadOnlyList<string> Names => Catalog.Value.Names;

    /// <summary>
    /// Checks an optimizer without creating it (and without loading libtorch): unknown name (the message lists the
    /// known ones), unknown argument (at <c>{knobPath}.args.{arg}</c>, listing the accepted ones), missing required
    /// argument, and values of the wrong type. Returns every fault; empty when the optimizer can be created.
    /// </summary>
    /// <param name="spec">The optimizer's name and arguments.</param>
    /// <param name="knobPath">Where the optimizer sits in the config, such as <c>train.optimizer</c>.</param>
    public static IReadOnlyList<ConfigError> Validate(NamedComponent spec, string knobPath) =>
        [.. Catalog.Value.Validate(spec, knobPath), .. Bounds(spec, knobPath)];

    /// <summary>
    /// The arguments TorchSharp's optimizers refuse when they are made, checked before: a learning rate, epsilon,
    /// weight decay, momentum, dampening or learning-rate decay below 0, a beta outside [0, 1).
    /// </summary>
    private static IEnumerable<ConfigError> Bounds(NamedComponent spec, string knobPath)
    {
        static double? Number(object? value) => value is long or double ? Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture) : null;
        static string Show(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (key, value) in spec.Args)
        {
            var path = $"{knobPath}.args.{key}";
            switch (key.Replace("_", "", StringComparison.Ordinal).ToLowerInvariant())
            {
                case "lr" or "learningrate" or "eps" or "weightdecay" or "momentum" or "dampening" or "lrdecay" when Number(value) is < 0 and var negative:
                    yield return new ConfigError(path, $"must be at least 0, got {Show(negative)}");
                    break;
                case "beta1" or "beta2" when Number(value) is { } beta && beta is < 0 or >= 1:
                    yield return new ConfigError(path, $"must be at least 0 and below 1, got {Show(beta)}");
                    break;
                case "betas" when value is IReadOnlyList<object?> betas:
                    for (var i = 0; i < betas.Count; i++)
                        if (Number(betas[i]) is { } b && b is < 0 or >= 1)
                            yield return new ConfigError($"{path}[{i}]", $"must be at least 0 and below 1, got {Show(b)}");
                    break;
            }
        }
    }

    /// <summary>
    /// Creates the optimizer over <paramref name="parameters"/>. A fault found by <see cref="Validate"/>, or an argument
    /// TorchSharp rejects (such as a negative learning rate), is a <see cref="ConfigException"/> at
    /// <paramref name="knobPath"/>. libtorch must be loaded (<see cref="Native.TorchNative.EnsureLoaded"/>).
    /// </summary>
    public static torch.optim.Optimizer Create(NamedComponent spec, IEnumerable<Parameter> parameters, string knobPath = DefaultPath)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(parameters);
        return (torch.optim.Optimizer)Catalog.Value.Create(spec, parameters, knobPath);
    }
}

/// <summary>
/// Creates any learning-rate scheduler of <c>TorchSharp.torch.optim.lr_scheduler</c> (StepLR, MultiStepLR,
/// ExponentialLR, CosineAnnealingLR, OneCycleLR, CyclicLR, LinearLR, ...) from a config's <c>{"name", "args"}</c>,
/// found by reflection over its public static factories; arguments bind as for <see cref="Optimizers"/>.
/// </summary>
/// <remarks>
/// Schedulers whose required arguments are functions or other schedulers (LambdaLR, MultiplicativeLR, SequentialLR)
/// cannot come from a config; naming one is an error that says so. Enum arguments take PyTorch's strings, such as
/// <c>"anneal_strategy": "linear"</c> or <c>"mode": "exp_range"</c>.
/// </remarks>
public static class LrSchedulers
{
    /// <summary>The default knob path of the scheduler in messages.</summary>
    public const string DefaultPath = "train.lr_scheduler";

    private static readonly Lazy<ComponentCatalog> Catalog = new(() => new ComponentCatalog(
        typeof(torch.optim.lr_scheduler), typeof(torch.optim.Optimizer), typeof(torch.optim.lr_scheduler.LRScheduler),
        "learning-rate scheduler"));

    /// <summary>The scheduler names a config can use, in TorchSharp's spelling.</summary>
    public static IReadOnlyList<string> Names => Catalog.Value.Names;

    /// <summary>
    /// Checks a scheduler without creating it (and without loading libtorch); see <see cref="Optimizers.Validate"/>.
    /// A missing required argument, such as StepLR's <c>step_size</c>, is reported at <c>{knobPath}.args.step_size</c>.
    /// </summary>
    /// <param name="spec">The scheduler's name and arguments.</param>
    /// <param name="knobPath">Where the scheduler sits in the config, such as <c>train.lr_scheduler</c>.</param>
    public static IReadOnlyList<ConfigError> Validate(NamedComponent spec, string knobPath) =>
        Catalog.Value.Validate(spec, knobPath);

    /// <summary>
    /// Creates the scheduler for <paramref name="optimizer"/>. A fault found by <see cref="Validate"/>, or an argument
    /// TorchSharp rejects, is a <see cref="ConfigException"/> at <paramref name="knobPath"/>.
    /// </summary>
    public static torch.optim.lr_scheduler.LRScheduler Create(NamedComponent spec, torch.optim.Optimizer optimizer, string knobPath = DefaultPath)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(optimizer);
        return (torch.optim.lr_scheduler.LRScheduler)Catalog.Value.Create(spec, optimizer, knobPath);
    }
}
