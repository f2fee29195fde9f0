using System.Globalization;
using RapidFire.Actors.Runs;

namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// Which of a run's checkpoints to test or predict with: a pure choice over the run's journaled state and the keys a
/// store lists, with no store behind it.
/// </summary>
/// <remarks>
/// The forms, as <c>--checkpoint</c> takes them (<see cref="Parse"/>):
/// <list type="bullet">
/// <item><c>final</c>: the run's final state, its newest checkpoint (<see cref="RunState.LastCheckpoint"/>, else the
/// newest the store lists).</item>
/// <item><c>best:&lt;metric&gt;</c> or <c>best:&lt;metric&gt;:min|max</c>: the end of the epoch whose validation
/// <c>metric</c> is best (the earliest such epoch on a tie; NaN never wins). Without a direction, a metric named
/// <c>loss</c> or ending in <c>loss</c> or <c>error</c> is minimized, any other maximized.</item>
/// <item><c>epoch:&lt;n&gt;</c>: the end of epoch n (1-based), the checkpoint of its last chunk.</item>
/// </list>
/// Retention keeps every epoch-end checkpoint and the final one (<see cref="CheckpointRetention"/>), so every choice
/// finds its checkpoint unless the run never got there or a file was removed; the error then says which.
/// </remarks>
public abstract record CheckpointChoice
{
    private protected CheckpointChoice() { }

    /// <summary>What <c>--checkpoint</c> accepts, for messages.</summary>
    public const string Forms = "final, best:<metric>, best:<metric>:min|max or epoch:<n> (n from 1)";

    /// <summary>The run's final state: its newest checkpoint.</summary>
    public static CheckpointChoice Final { get; } = new FinalChoice();

    /// <summary>The end of the epoch whose validation <paramref name="metric"/> is best; <paramref name="minimize"/> null: by its name.</summary>
    public static CheckpointChoice Best(string metric, bool? minimize = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(metric);
        return new BestChoice(metric, minimize ?? MinimizedByName(metric));
    }

    /// <summary>The end of epoch <paramref name="epoch"/> (1-based).</summary>
    public static CheckpointChoice AtEpoch(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(epoch, 1);
        return new EpochChoice(epoch);
    }

    /// <summary>Whether a metric is minimized when no direction is given: <c>loss</c>, or a name ending in <c>loss</c> or <c>error</c>.</summary>
    public static bool MinimizedByName(string metric) =>
        metric.EndsWith("loss", StringComparison.OrdinalIgnoreCase) || metric.EndsWith("error", StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads <c>final</c>, <c>best:&lt;metric&gt;[:min|max]</c> or <c>epoch:&lt;n&gt;</c>.</summary>
    /// <exception cref="ArgumentException">Any other text; the message lists the forms.</exception>
    public static CheckpointChoice Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        if (trimmed.Equals("final", StringComparison.OrdinalIgnoreCase)) return Final;
        if (trimmed.StartsWith("epoch:", StringComparison.OrdinalIgnoreCase))
        {
            var number = trimmed["epoch:".Length..];
            if (int.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) && epoch >= 1) return AtEpoch(epoch);
            throw Invalid(text, $"'{number}' is not an epoch number from 1");
        }
        if (trimmed.StartsWith("best:", StringComparison.OrdinalIgnoreCase))
        {
            var metric = trimmed["best:".Length..];
            bool? minimize = null;
            if (metric.EndsWith(":min", StringComparison.OrdinalIgnoreCase)) (metric, minimize) = (metric[..^4], true);
            else if (metric.EndsWith(":max", StringComparison.OrdinalIgnoreCase)) (metric, minimize) = (metric[..^4], false);
            if (metric.Length == 0 || metric.Contains(':')) throw Invalid(text, "best: needs a metric name, then optionally :min or :max");
            return Best(metric, minimize);
        }
        throw Invalid(text, null);
    }

    private static ArgumentException Invalid(string text, string? why) =>
        new($"checkpoint '{text}' is not one of {Forms}{(why is null ? "" : $": {why}")}"); // no "(Parameter ...)": the message is shown to users

    /// <summary>
    /// The checkpoint this choice picks for <paramref name="run"/>, among <paramref name="available"/> (the run's keys
    /// in the store), or the reason there is none, naming the run and what is missing.
    /// </summary>
    /// <param name="run">The run's journaled state (progress, validation history, newest checkpoint).</param>
    /// <param name="available">The run's checkpoints in the store, in any order.</param>
    /// <param name="describe">Names a checkpoint in messages (a full path, say); its store-relative name when null.</param>
    public abstract CheckpointResolution Resolve(RunState run, IReadOnlyCollection<CheckpointRef> available, Func<CheckpointRef, string>? describe = null);

    /// <summary>The end of <paramref name="epoch0"/> (0-based) of <paramref name="run"/>, if the store has it.</summary>
    private protected static CheckpointResolution EpochEnd(RunState run, int epoch0, IReadOnlyCollection<CheckpointRef> available,
        Func<CheckpointRef, string> describe, string why)
    {
        if (run.ChunksPerEpoch < 1)
            return CheckpointResolution.Missing($"run {run.RunId} has no checkpoint at the end of epoch {epoch0 + 1} (it never trained)");
        var key = new CheckpointRef(run.RunId, epoch0, run.ChunksPerEpoch - 1);
        if (available.Contains(key)) return CheckpointResolution.Found(key, why);
        if (epoch0 + 1 > run.EpochsDone)
            return CheckpointResolution.Missing(
                $"run {run.RunId} has no checkpoint at the end of epoch {epoch0 + 1} (it trained {Epochs(run.EpochsDone)})");
        return CheckpointResolution.Missing($"run {run.RunId}'s checkpoint at the end of epoch {epoch0 + 1} ({describe(key)}) is missing");
    }

    private static string Epochs(int n) => n == 1 ? "1 epoch" : $"{n} epochs";

    private sealed record FinalChoice : CheckpointChoice
    {
        public override CheckpointResolution Resolve(RunState run, IReadOnlyCollection<CheckpointRef> available, Func<CheckpointRef, string>? describe = null)
        {
            ArgumentNullException.ThrowIfNull(run);
            ArgumentNullException.ThrowIfNull(available);
            describe ??= k => k.RelativePath;
            // The journal's newest checkpoint is the run's state; a newer file (a crash between its write and its journal
            // entry) holds work the run does not count.
            if (run.LastCheckpoint is { } last)
                return available.Contains(last)
                    ? CheckpointResolution.Found(last, "final")
                    : CheckpointResolution.Missing($"run {run.RunId}'s final checkpoint ({describe(last)}) is missing");
            var newest = available.Where(k => k.RunId == run.RunId).Order().LastOrDefault();
            return newest is null
                ? CheckpointResolution.Missing($"run {run.RunId} has no checkpoint (it trained {run.ChunksTrained} chunks; a fit with save-strategy none keeps none)")
                : CheckpointResolution.Found(newest, "final");
        }

        public override string ToString() => "final";
    }

    private sealed record BestChoice(string Metric, bool Minimize) : CheckpointChoice
    {
        public override CheckpointResolution Resolve(RunState run, IReadOnlyCollection<CheckpointRef> available, Func<CheckpointRef, string>? describe = null)
        {
            ArgumentNullException.ThrowIfNull(run);
            ArgumentNullException.ThrowIfNull(available);
            var history = run.ValidationHistory;
            if (history.Count == 0)
                return CheckpointResolution.Missing(
                    $"run {run.RunId} has no validation metrics to pick its best epoch by {Metric} (no epoch was validated: does the data handle have a validation partition?)");
            int? best = null;
            for (var epoch = 0; epoch < history.Count; epoch++)
            {
                if (!history[epoch].TryGetValue(Metric, out var value) || double.IsNaN(value)) continue;
                var current = best is { } b ? history[b][Metric] : double.NaN;
                if (best is null || (Minimize ? value < current : value > current)) best = epoch;
            }
            if (best is not { } chosen)
            {
                var known = history.SelectMany(h => h.Keys).Distinct().Order(StringComparer.Ordinal);
                return CheckpointResolution.Missing(
                    $"run {run.RunId}'s validation metrics have no '{Metric}' to pick its best epoch by; they have: {string.Join(", ", known)}");
            }
            var value0 = history[chosen][Metric].ToString("R", CultureInfo.InvariantCulture);
            return EpochEnd(run, chosen, available, describe ?? (k => k.RelativePath),
                $"best {Metric} ({(Minimize ? "min" : "max")}): {value0} at epoch {chosen + 1}");
        }

        public override string ToString() => $"best:{Metric}:{(Minimize ? "min" : "max")}";
    }

    private sealed record EpochChoice(int Epoch) : CheckpointChoice
    {
        public override CheckpointResolution Resolve(RunState run, IReadOnlyCollection<CheckpointRef> available, Func<CheckpointRef, string>? describe = null)
        {
            ArgumentNullException.ThrowIfNull(run);
            ArgumentNullException.ThrowIfNull(available);
            return EpochEnd(run, Epoch - 1, available, describe ?? (k => k.RelativePath), $"end of epoch {Epoch}");
        }

        public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"epoch:{Epoch}");
    }
}

/// <summary>What a <see cref="CheckpointChoice"/> picked: a checkpoint and why, or the reason there is none.</summary>
/// <param name="Checkpoint">The checkpoint picked, or null.</param>
/// <param name="Reason">Why it was picked (<c>final</c>, <c>end of epoch 2</c>, <c>best loss (min): 0.31 at epoch 2</c>).</param>
/// <param name="Error">Why there is none, naming the run and what is missing.</param>
public sealed record CheckpointResolution(CheckpointRef? Checkpoint, string? Reason, string? Error)
{
    /// <summary>A checkpoint was picked.</summary>
    public static CheckpointResolution Found(CheckpointRef checkpoint, string reason) => new(checkpoint, reason, null);

    /// <summary>None could be.</summary>
    public static CheckpointResolution Missing(string error) => new(null, null, error);
}
