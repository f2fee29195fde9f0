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
        var method = Method.Contains('.') || Method is "loss" or "optimizer" or "lr_scheduler" or "data" or "device" or "runtime" ? Method : $"MLSpec.{Method}";
        return where.Count == 0 ? $"{method}: {Message}" : $"{method} ({string.Join(", ", where)}): {Message}";
    }
}
