namespace RapidFire.Spec.Configs;

/// <summary>
/// A config with knobs: the C# form of one config object of the JSON format (see <see cref="ConfigGroup.FromJson"/>).
/// A <see cref="ConfigGroup"/> turns it into leaf <see cref="Config"/>s.
/// </summary>
/// <remarks>
/// Any value may be a <see cref="Knob"/>. Everything else is a literal: numbers, strings, bools, <see langword="null"/>,
/// arrays and lists (a C# list is never a knob; use <see cref="Knob.List"/>), and maps (string-keyed dictionaries,
/// which may hold knobs at any depth). Keep maps ordered (a <see cref="Dictionary{TKey,TValue}"/> filled once, or
/// an <see cref="OrderedDictionary{TKey,TValue}"/>): the leaf keeps their order.
/// </remarks>
public sealed record ConfigTemplate
{
    /// <summary>The user knobs, in the order the leaf config will show them. Their names must not be reserved keys.</summary>
    public IReadOnlyDictionary<string, object?> UserKnobs { get; init; } = new Dictionary<string, object?>();

    /// <summary>Epochs, batch size, optimizer and learning-rate scheduler.</summary>
    public TrainTemplate Train { get; init; } = new();

    /// <summary>The named metrics (such as <c>top1_accuracy</c>), the same for every leaf; <see langword="null"/> for none.</summary>
    public IReadOnlyList<string>? NamedMetrics { get; init; }
}

/// <summary>The <c>train</c> section of a <see cref="ConfigTemplate"/>.</summary>
public sealed record TrainTemplate
{
    /// <summary>The number of epochs: a whole number &gt;= 1, or a knob of them. Required.</summary>
    public object? Epochs { get; init; }

    /// <summary>The minibatch size: a whole number &gt;= 1, or a knob of them. Required.</summary>
    public object? BatchSize { get; init; }

    /// <summary>
    /// Gradient accumulation, optional: the optimizer steps every this many minibatches (a whole number &gt;= 1, or a
    /// knob of them), on the mean gradient of their examples.
    /// </summary>
    public object? AccumulateGradBatches { get; init; }

    /// <summary>Gradient clipping, optional: the total gradient norm before each step is at most this (a number &gt; 0, or a knob).</summary>
    public object? MaxGradNorm { get; init; }

    /// <summary>
    /// The optimizer, required: a <see cref="ComponentTemplate"/> (whose name and arguments may be knobs), or a
    /// <see cref="ListKnob"/> of them to compare different optimizers with their own arguments.
    /// </summary>
    public object? Optimizer { get; init; }

    /// <summary>
    /// The learning-rate scheduler, optional: a <see cref="ComponentTemplate"/>, or a <see cref="ListKnob"/> of
    /// them where a <see langword="null"/> option means "no scheduler" (the leaf then has no <c>lr_scheduler</c> key).
    /// </summary>
    public object? LrScheduler { get; init; }
}

/// <summary>
/// An optimizer or learning-rate scheduler by TorchSharp name with PyTorch-style keyword arguments, any of which
/// (the name too) may be a <see cref="Knob"/>. In a leaf it becomes <c>{"name": ..., "args": {...}}</c>.
/// </summary>
/// <param name="Name">The name, such as <c>Adam</c> or <c>StepLR</c> (case-insensitive), or a knob of names.</param>
/// <param name="Args">The arguments by parameter name, such as <c>lr</c>; <see langword="null"/> for none.</param>
public sealed record ComponentTemplate(object? Name, IReadOnlyDictionary<string, object?>? Args = null);
