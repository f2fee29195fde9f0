namespace RapidFire.Spec;

/// <summary>The data partition an MLSpec method is called for.</summary>
public enum Mode
{
    /// <summary>Training: forward, backward and optimizer step.</summary>
    Train,
    /// <summary>Validation at the end of every epoch: forward only.</summary>
    Validation,
    /// <summary>Evaluation of trained runs on the test partition: forward only.</summary>
    Test,
    /// <summary>Inference on the unlabelled predict partition: outputs only, no loss.</summary>
    Predict,
}

/// <summary>The seed document's lower-case names of <see cref="Mode"/>.</summary>
public static class ModeNames
{
    /// <summary>"train", "validation", "test" or "predict".</summary>
    public static string ToName(this Mode mode) => mode switch
    {
        Mode.Train => "train",
        Mode.Validation => "validation",
        Mode.Test => "test",
        Mode.Predict => "predict",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
    };

    /// <summary>Parses a partition name as written in data handles and on the command line.</summary>
    public static Mode Parse(string name) => name.ToLowerInvariant() switch
    {
        "train" => Mode.Train,
        "validation" => Mode.Validation,
        "test" => Mode.Test,
        "predict" => Mode.Predict,
        _ => throw new ArgumentException($"unknown mode '{name}': expected train, validation, test or predict", nameof(name)),
    };

    /// <summary>All modes, in the order the partitions are listed in a data handle.</summary>
    public static IReadOnlyList<Mode> All { get; } = [Mode.Train, Mode.Validation, Mode.Test, Mode.Predict];
}
