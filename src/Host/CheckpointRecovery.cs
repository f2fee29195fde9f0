using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Persistence;
using RapidFire.Actors.Runs;

namespace RapidFire.Host;

/// <summary>
/// The recovery of a fit whose journal is lost or unreadable (<see cref="Experiment.RecoverFromCheckpoints"/>): the old
/// journal and metric files set aside, and each run's state from its newest valid checkpoint.
/// </summary>
internal static class CheckpointRecovery
{
    /// <summary>
    /// Renames the unreadable <paramref name="journal"/> (with its log files) and the metric files of the experiment in
    /// <paramref name="path"/>: nothing of them is destroyed. Returns what was kept, as it is named now.
    /// </summary>
    public static List<string> SetAside(string path, string journal)
    {
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture);
        var kept = new List<string>();
        foreach (var file in new[] { journal, journal + "-wal", journal + "-shm" }.Where(File.Exists))
        {
            File.Move(file, $"{file}.unreadable-{stamp}");
            kept.Add($"{Path.GetFileName(file)}.unreadable-{stamp}");
        }
        var metrics = Path.Combine(path, "metrics");
        if (Directory.Exists(metrics))
        {
            Directory.Move(metrics, $"{metrics}.before-recovery-{stamp}");
            kept.Add($"metrics.before-recovery-{stamp}/");
        }
        return kept;
    }

    /// <summary>
    /// The fit of <paramref name="manifest"/> rebuilt from each run's newest valid checkpoint in <paramref name="checkpoints"/> (runs
    /// found only in the checkpoint folder, clones, are recovered too), with the report of what was recovered and lost.
    /// </summary>
    public static Experiment.RecoveryPlan Plan(ExperimentProtocol.FitManifest manifest, IReadOnlyList<string> kept, ICheckpointStore checkpoints)
    {
        var ids = manifest.Runs.Select(r => r.RunId).ToHashSet();
        if (checkpoints is LocalCheckpointStore local && Directory.Exists(local.Directory))
            foreach (var folder in Directory.EnumerateDirectories(local.Directory, "run-*"))
                if (int.TryParse(Path.GetFileName(folder)["run-".Length..], out var id))
                    ids.Add(id); // a clone made during the fit: its knobs come from its checkpoint
        var states = new Dictionary<int, RunSnapshot>();
        var report = new List<string>();
        var definitions = new List<ExperimentProtocol.RunDefinition>();
        foreach (var runId in ids.Order())
        {
            var skipped = new List<string>();
            RunSnapshot? state = null;
            foreach (var key in checkpoints.List(runId).OrderByDescending(k => k))
            {
                try
                {
                    state = JournalSerializer.FromJson<RunSnapshot>(checkpoints.Load(key).Header.State);
                    report.Add($"run {runId}: recovered from {checkpoints.Describe(key)}: epoch {key.Epoch + 1} chunk {key.Chunk + 1} " +
                               $"({state.Run.ChunksTrained} chunks trained, {state.Run.EpochsDone} epochs closed)" +
                               (skipped.Count > 0 ? $"; newer ones could not be read: {string.Join("; ", skipped)}" : ""));
                    break;
                }
                catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException)
                {
                    skipped.Add(e.Message);
                }
            }
            var run = manifest.Runs.FirstOrDefault(r => r.RunId == runId);
            if (state is null)
            {
                if (run is null) continue; // a folder without a readable checkpoint: nothing to go on from
                report.Add($"run {runId}: no valid checkpoint{(skipped.Count > 0 ? $" ({string.Join("; ", skipped)})" : "")}: it starts over");
                definitions.Add(run);
                continue;
            }
            states[runId] = state;
            definitions.Add(run ?? new ExperimentProtocol.RunDefinition(runId, state.Run.Config));
        }
        report.Add("lost with the journal: the IC log (operations and their outcomes), the minibatch metrics of the chunks before each run's checkpoint " +
                   "and any chunk trained after it (trained again), and whether a run had ended: every run recovered trains on to its end");
        report.Add($"kept: {string.Join(", ", kept)}");
        return new Experiment.RecoveryPlan(manifest with { Runs = definitions }, states, report);
    }
}
