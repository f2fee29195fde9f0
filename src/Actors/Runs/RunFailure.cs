namespace RapidFire.Actors.Runs;

/// <summary>
/// Why a run failed, with where it happened: the MLSpec method (or runtime step), the epoch and chunk, the row id
/// for <c>RowPrep</c>, and the message. Only that run fails; the experiment and the other runs go on.
/// </summary>
/// <param name="Method">The MLSpec method at fault (<c>RowPrep</c>, <c>ComputeForward</c>...) or the runtime step (<c>loss</c>, <c>optimizer</c>).</param>
/// <param name="Message">What went wrong.</param>
/// <param name="Mode">The partition being processed (<c>train</c>, <c>validation</c>...), if any.</param>
/// <param name="Epoch">The 1-based epoch, if any.</param>
/// <param name="Chunk">The 1-based chunk, if any.</param>
/// <param name="RowId">The ESF id of the row being prepared, for <c>RowPrep</c>.</param>
public sealed record RunFailure(string Method, string Message, string? Mode = null, int? Epoch = null, int? Chunk = null, long? RowId = null)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var where = new List<string>();
        if (Mode is not null) where.Add(Mode);
        if (Epoch is not null) where.Add($"epoch {Epoch}");
        if (Chunk is not null) where.Add($"chunk {Chunk}");
        if (RowId is not null) where.Add($"row id {RowId}");
        var method = IsRuntimeStep ? Method : $"MLSpec.{Method}";
        return where.Count == 0 ? $"{method}: {Message}" : $"{method} ({string.Join(", ", where)}): {Message}";
    }

    /// <summary>
    /// The runtime's own steps around the user's code (the loss check, the optimizer, a checkpoint's capture or write,
    /// the data...): a failure there is never shown as an MLSpec method's. Every other name is an MLSpec method's.
    /// </summary>
    public static IReadOnlySet<string> RuntimeSteps { get; } = new HashSet<string>
        { "loss", "loss.backward", "optimizer", "lr_scheduler", "data", "device", "runtime", "checkpoint", "data-parallel", "storage" };

    /// <summary>Whether <see cref="Method"/> is a runtime step (or a dotted name of one), not an MLSpec method.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsRuntimeStep => Method.Contains('.') || RuntimeSteps.Contains(Method);

    /// <summary>
    /// <see cref="ToString"/> as one printable line, for tables and <c>runs.csv</c>: control characters (the NUL bytes
    /// of a decoder's message) are dropped, and a message of several lines (libtorch's C++ stack trace) is cut after
    /// its first, saying that <c>experiment.log</c> has the whole of it.
    /// </summary>
    public string OneLine()
    {
        var text = Printable(ToString());
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length <= 1 ? text.Trim() : $"{lines[0]} (the full message is in experiment.log)";
    }

    /// <summary><paramref name="text"/> without control characters other than line breaks (tabs become spaces).</summary>
    public static string Printable(string text) =>
        string.Concat(text.Where(c => c == '\n' || !char.IsControl(c) || c == '\t').Select(c => c == '\t' ? ' ' : c));
}
