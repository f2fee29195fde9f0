using System.Text.Json.Serialization;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.RegularExpressions;

namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// The key of one checkpoint: run <paramref name="RunId"/> after its last completed chunk, chunk
/// <paramref name="Chunk"/> of epoch <paramref name="Epoch"/> (both 0-based, as in <c>RunTask</c>).
/// </summary>
/// <remarks>
/// Its store-relative name is <c>run-{RunId}/e{Epoch:D4}-c{Chunk:D4}.ckpt</c>, with the same 0-based numbers as the
/// record (so <c>run-3/e0001-c0000.ckpt</c> is run 3 after the first chunk of its second epoch); numbers past 9999
/// simply get more digits. The key is small and serializable: actor messages carry it, never the checkpoint itself.
/// Keys order by run, then epoch, then chunk.
/// </remarks>
/// <param name="RunId">The run's id.</param>
/// <param name="Epoch">The 0-based epoch of the last completed chunk.</param>
/// <param name="Chunk">The 0-based chunk, within <paramref name="Epoch"/>, of the last completed chunk.</param>
public sealed partial record CheckpointRef(int RunId, int Epoch, int Chunk) : IComparable<CheckpointRef>
{
    /// <summary>The extension of a checkpoint file.</summary>
    public const string Extension = ".ckpt";

    /// <summary>The run's id (not negative).</summary>
    public int RunId { get; } = RunId >= 0 ? RunId : throw new ArgumentOutOfRangeException(nameof(RunId), RunId, "a run id cannot be negative");

    /// <summary>The 0-based epoch of the last completed chunk (not negative).</summary>
    public int Epoch { get; } = Epoch >= 0 ? Epoch : throw new ArgumentOutOfRangeException(nameof(Epoch), Epoch, "an epoch cannot be negative");

    /// <summary>The 0-based chunk of the last completed chunk (not negative).</summary>
    public int Chunk { get; } = Chunk >= 0 ? Chunk : throw new ArgumentOutOfRangeException(nameof(Chunk), Chunk, "a chunk cannot be negative");

    /// <summary>The folder of a run's checkpoints, relative to the store: <c>run-{runId}</c>.</summary>
    public static string RunFolder(int runId) => string.Create(CultureInfo.InvariantCulture, $"run-{runId}");

    /// <summary>The file name within the run's folder: <c>e{Epoch:D4}-c{Chunk:D4}.ckpt</c>.</summary>
    [JsonIgnore]
    public string FileName => string.Create(CultureInfo.InvariantCulture, $"e{Epoch:D4}-c{Chunk:D4}{Extension}");

    /// <summary>The store-relative name, with <c>/</c> as separator: <c>run-{RunId}/e{Epoch:D4}-c{Chunk:D4}.ckpt</c>.</summary>
    [JsonIgnore]
    public string RelativePath => $"{RunFolder(RunId)}/{FileName}";

    /// <summary>
    /// Reads a key back from its <see cref="RelativePath"/> (<c>\</c> is accepted as separator). Only the exact
    /// name this type writes parses: a temporary file, another extension or a non-canonical number is no key.
    /// </summary>
    public static bool TryParse(string? relativePath, [NotNullWhen(true)] out CheckpointRef? key)
    {
        key = null;
        if (relativePath is null) return false;
        var match = NamePattern().Match(relativePath.Replace('\\', '/'));
        if (!match.Success) return false;
        if (!int.TryParse(match.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var run) ||
            !int.TryParse(match.Groups[2].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) ||
            !int.TryParse(match.Groups[3].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var chunk))
            return false;
        var parsed = new CheckpointRef(run, epoch, chunk);
        // One key, one name: "run-03" or "e02-c1" would alias a canonical file.
        if (parsed.RelativePath != relativePath.Replace('\\', '/')) return false;
        key = parsed;
        return true;
    }

    /// <summary>Reads a key back from its <see cref="RelativePath"/>; a name that is not one is a <see cref="FormatException"/>.</summary>
    public static CheckpointRef Parse(string relativePath) =>
        TryParse(relativePath, out var key)
            ? key
            : throw new FormatException($"'{relativePath}' is not a checkpoint name (expected run-<id>/e<epoch>-c<chunk>{Extension})");

    /// <inheritdoc />
    public int CompareTo(CheckpointRef? other)
    {
        if (other is null) return 1;
        var byRun = RunId.CompareTo(other.RunId);
        if (byRun != 0) return byRun;
        var byEpoch = Epoch.CompareTo(other.Epoch);
        return byEpoch != 0 ? byEpoch : Chunk.CompareTo(other.Chunk);
    }

    /// <inheritdoc />
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"run {RunId} epoch {Epoch} chunk {Chunk}");

    [GeneratedRegex(@"^run-([0-9]+)/e([0-9]+)-c([0-9]+)\.ckpt$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();
}
