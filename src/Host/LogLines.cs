using System.Globalization;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Host;

/// <summary>
/// The one line an experiment event is told in: in <c>experiment.log</c> and, without a terminal, in the CLI's output
/// (one wording for both).
/// </summary>
public static class LogLines
{
    /// <summary>
    /// The line of <paramref name="e"/>, or null for an event that has none. <paramref name="full"/> (the log's): a
    /// failed run's whole message; otherwise its first line, which points at the log.
    /// </summary>
    public static string? Of(ExperimentEvent e, bool full) => e switch
    {
        EpochDone { Epoch: var epoch } => $"run {epoch.RunId} epoch {epoch.Epoch + 1} {epoch.Mode.ToName()}: " +
                                          string.Join(", ", epoch.Metrics.Select(kv => $"{kv.Key} {Number(kv.Value)}")),
        Warning warning => $"warning: {warning.Message}",
        RunChanged { Recovered: true, Run: var run } => $"run {run.RunId} recovered: {run.Status}, {run.ChunksTrained} chunks trained ({run.Where})",
        ControlLogged { Record: var record } => record.Status == ControlStatus.Pending
            ? $"ic op {record.OpId}: {record.Op} requested{(record.Op.Origin is { } origin ? $" (automatic: {origin})" : "")}"
            : $"ic op {record.OpId}: {record.Op} -> {record.Status.ToString().ToLowerInvariant()}: {record.Outcome}",
        RunPrunedBy pruned => $"run {pruned.RunId} pruned: {pruned.Reason}",
        ClusterNotice notice => $"cluster: {notice.Message}",
        CacheNotice notice => $"prep cache: {notice.Message}",
        RunChanged { Run: { IsEnded: true } run } => $"run {run.RunId}: {run.Status} ({run.EndedBy}) after {run.EpochsDone} epoch(s)" +
            (run.Failure is null ? "" : $": {(full ? RunFailure.Printable(run.Failure.ToString()) : run.Failure.OneLine())}"),
        _ => null,
    };

    /// <summary>A metric as the CLI shows it: up to 4 decimals, <c>-</c> when there is none.</summary>
    public static string Number(double? value) => value is { } v ? v.ToString("0.####", CultureInfo.InvariantCulture) : "-";
}
