namespace RapidFire.Spec;

/// <summary>
/// An error in what the user gave RapidFire: a config, a data handle, an Example Structure File or an MLSpec.
/// <see cref="Problems"/> lists every fault found, one line each, each naming the thing at fault.
/// </summary>
public abstract class RapidFireException : Exception
{
    /// <summary>Creates the exception; its message is the problems, one per line.</summary>
    protected RapidFireException(IReadOnlyList<string> problems, Exception? inner = null)
        : base(string.Join(Environment.NewLine, problems), inner) => Problems = problems;

    /// <summary>Every fault found, one line each.</summary>
    public IReadOnlyList<string> Problems { get; }
}

/// <summary>A fault in a config or config group, at a knob path such as <c>train.optimizer.args.lr</c>.</summary>
public sealed record ConfigError(string Path, string Message)
{
    /// <inheritdoc />
    public override string ToString() => string.IsNullOrEmpty(Path) ? Message : $"{Path}: {Message}";
}

/// <summary>A config or config group was rejected before anything ran.</summary>
public sealed class ConfigException(IReadOnlyList<ConfigError> errors)
    : RapidFireException(errors.Select(e => e.ToString()).ToList())
{
    /// <summary>Creates the exception for a single fault.</summary>
    public ConfigException(string path, string message) : this([new ConfigError(path, message)]) { }

    /// <summary>The faults, each with its knob path.</summary>
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

/// <summary>A fault in a data handle or an Example Structure File; <see cref="Row"/> is 1-based, header excluded.</summary>
public sealed record DataError(string File, long? Row, string Message)
{
    /// <inheritdoc />
    public override string ToString() => Row is null ? $"{File}: {Message}" : $"{File} row {Row}: {Message}";
}

/// <summary>A data handle or an Example Structure File was rejected.</summary>
public sealed class DataException(IReadOnlyList<DataError> errors, Exception? inner = null)
    : RapidFireException(errors.Select(e => e.ToString()).ToList(), inner)
{
    /// <summary>Creates the exception for a single fault.</summary>
    public DataException(string file, long? row, string message, Exception? inner = null)
        : this([new DataError(file, row, message)], inner) { }

    /// <summary>The faults, each naming its file and, where there is one, its row.</summary>
    public IReadOnlyList<DataError> Errors { get; } = errors;
}

/// <summary>
/// A user's MLSpec method failed or broke its contract. The message names the method; the runtime fails the
/// run it happened in, never the experiment.
/// </summary>
public sealed class SpecException(string method, string message, Exception? inner = null)
    : RapidFireException([$"MLSpec.{method}: {message}"], inner)
{
    /// <summary>The MLSpec method at fault, such as <c>RowPrep</c>.</summary>
    public string Method { get; } = method;
}
