using System.Globalization;
using nietras.SeparatedValues;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Host;

/// <summary>
/// Writes what an experiment produced into its folder: <c>runs.csv</c> (one row per run: status, <c>ended_by</c>,
/// every knob, the final value of each epoch-level validation metric as <c>val_&lt;metric&gt;</c>) and, under
/// <c>metrics/</c>, each run's minibatch metrics (<c>run-N.minibatches.csv</c>) and epoch metrics
/// (<c>run-N.epochs.csv</c>). The metric files are rewritten whenever an epoch closes and when a run ends.
/// </summary>
public sealed class ExperimentFiles
{
    private readonly string directory;
    private readonly object gate = new();
    private readonly Dictionary<int, List<Dictionary<string, string>>> minibatches = [];
    private readonly Dictionary<int, List<Dictionary<string, string>>> epochs = [];

    /// <summary>Files of the experiment folder <paramref name="directory"/>.</summary>
    public ExperimentFiles(string directory)
    {
        this.directory = directory;
        Directory.CreateDirectory(MetricsDirectory);
    }

    /// <summary>The folder of the per-run metric files.</summary>
    public string MetricsDirectory => Path.Combine(directory, "metrics");

    /// <summary>The runs table.</summary>
    public string RunsFile => Path.Combine(directory, "runs.csv");

    /// <summary>Takes an event of the experiment.</summary>
    public void Record(ExperimentEvent e)
    {
        lock (gate)
        {
            switch (e)
            {
                case MinibatchDone { Minibatch: var m }:
                    Rows(minibatches, m.RunId).Add(Row(
                        [("mode", m.Mode.ToName()), ("epoch", Text(m.Epoch + 1)), ("chunk", Text(m.Chunk + 1)), ("step", Text(m.Step + 1)), ("examples", Text(m.Examples))],
                        m.Numbers()));
                    break;
                case EpochDone { Epoch: var epoch }:
                    Rows(epochs, epoch.RunId).Add(Row([("mode", epoch.Mode.ToName()), ("epoch", Text(epoch.Epoch + 1))], epoch.Metrics));
                    WriteMetrics(epoch.RunId);
                    break;
                case RunChanged { Run.IsEnded: true } changed:
                    WriteMetrics(changed.Run.RunId);
                    break;
            }
        }
    }

    /// <summary>Writes <c>runs.csv</c> (adding to the rows of earlier fits of the experiment).</summary>
    public void WriteRuns(IReadOnlyList<RunState> runs)
    {
        lock (gate)
        {
            var rows = File.Exists(RunsFile) ? ReadRows(RunsFile) : [];
            rows.RemoveAll(r => runs.Any(run => r.GetValueOrDefault("run_id") == Text(run.RunId)));
            rows.AddRange(runs.Select(RunRow));
            Write(RunsFile, rows);
        }
    }

    private static Dictionary<string, string> RunRow(RunState run)
    {
        var row = new Dictionary<string, string>
        {
            ["run_id"] = Text(run.RunId),
            ["status"] = run.Status.ToString(),
            ["ended_by"] = run.EndedBy ?? "",
            ["epochs_done"] = Text(run.EpochsDone),
        };
        foreach (var (key, value) in run.Config.Leaves()) row[key] = value switch
        {
            null => "",
            string text => text,
            double d => Text(d),
            _ => ConfigValue.ToJson(value),
        };
        if (run.ValidationHistory.Count > 0)
            foreach (var (metric, value) in run.ValidationHistory[^1]) row[$"val_{metric}"] = Text(value);
        row["error"] = run.Failure?.ToString() ?? "";
        return row;
    }

    private void WriteMetrics(int runId)
    {
        if (minibatches.TryGetValue(runId, out var m)) Write(Path.Combine(MetricsDirectory, $"run-{runId}.minibatches.csv"), m);
        if (epochs.TryGetValue(runId, out var e)) Write(Path.Combine(MetricsDirectory, $"run-{runId}.epochs.csv"), e);
    }

    private static List<Dictionary<string, string>> Rows(Dictionary<int, List<Dictionary<string, string>>> table, int runId)
    {
        if (!table.TryGetValue(runId, out var rows)) table[runId] = rows = [];
        return rows;
    }

    private static Dictionary<string, string> Row(IEnumerable<(string, string)> keys, IReadOnlyDictionary<string, double> values)
    {
        var row = keys.ToDictionary(k => k.Item1, k => k.Item2);
        foreach (var (key, value) in values) row[key] = Text(value);
        return row;
    }

    /// <summary>Writes rows with the union of their columns (first-seen order); a missing cell is empty. Atomic: temp file, then rename.</summary>
    private static void Write(string path, IReadOnlyList<Dictionary<string, string>> rows)
    {
        var columns = rows.SelectMany(r => r.Keys).Distinct().ToList();
        var temp = path + ".tmp";
        using (var writer = Sep.New(',').Writer(o => o with { Escape = true }).ToFile(temp))
        {
            if (rows.Count == 0) writer.Header.Add(columns);
            foreach (var source in rows)
            {
                using var row = writer.NewRow();
                foreach (var column in columns) row[column].Set(source.GetValueOrDefault(column, ""));
            }
        }
        File.Move(temp, path, overwrite: true);
    }

    private static List<Dictionary<string, string>> ReadRows(string path)
    {
        using var reader = Sep.Reader(o => o with { Unescape = true }).FromFile(path);
        var names = reader.Header.ColNames;
        var rows = new List<Dictionary<string, string>>();
        foreach (var row in reader)
        {
            var cells = new Dictionary<string, string>();
            foreach (var name in names) cells[name] = row[name].ToString();
            rows.Add(cells);
        }
        return rows;
    }

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
