using System.Globalization;
using nietras.SeparatedValues;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Host;

/// <summary>
/// Writes what an experiment produced into its folder: <c>runs.csv</c> (one row per run: status, <c>ended_by</c>,
/// every knob, the final value of each epoch-level validation metric as <c>val_&lt;metric&gt;</c>), under
/// <c>metrics/</c> each run's minibatch metrics (<c>run-N.minibatches.csv</c>) and epoch metrics
/// (<c>run-N.epochs.csv</c>), and <c>experiment.log</c>.
/// </summary>
/// <remarks>
/// The metric files are a projection of the runs' journals: they take only journaled events (<see cref="Apply"/>),
/// live or read back on resume, so after a crash and a resume they hold the same rows as after an uninterrupted fit.
/// They are written whenever an epoch closes and when a run ends: a metric file grows by the rows added since its last
/// write (a long fit does not rewrite every earlier row at every epoch), and is rewritten whole when its columns change
/// or a run went back to a checkpoint. With Parquet on, <c>runs.parquet</c> and each <c>run-N.*.parquet</c> are
/// rewritten with their CSV (<see cref="Export.ParquetTables"/>).
/// </remarks>
public sealed class ExperimentFiles
{
    private sealed record MinibatchRow(Mode Mode, int Epoch, int Chunk, int Step, IReadOnlyDictionary<string, double> Numbers,
        Dictionary<string, string> Cells);

    private sealed record EpochRow(Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Numbers, Dictionary<string, string> Cells);

    private readonly string directory;
    private readonly bool parquet;
    private readonly object gate = new();
    private readonly Dictionary<int, List<MinibatchRow>> minibatches = [];
    private readonly Dictionary<int, List<EpochRow>> epochs = [];
    private readonly SortedDictionary<int, Actors.Control.ControlRecord> controls = [];
    private readonly Dictionary<string, string> unwritten = [];
    private readonly Dictionary<string, Written> written = [];

    /// <summary>What a metric file holds: its columns, in order, and how many of its table's rows.</summary>
    private sealed record Written(List<string> Columns, int Rows);

    /// <summary>Files of the experiment folder <paramref name="directory"/>; with <paramref name="parquet"/>, the tables are also written as Parquet.</summary>
    public ExperimentFiles(string directory, bool parquet = false)
    {
        this.directory = directory;
        this.parquet = parquet;
        Directory.CreateDirectory(MetricsDirectory);
    }

    /// <summary>The folder of the per-run metric files.</summary>
    public string MetricsDirectory => Path.Combine(directory, "metrics");

    /// <summary>The runs table.</summary>
    public string RunsFile => Path.Combine(directory, "runs.csv");

    /// <summary>The experiment's log.</summary>
    public string LogFile => Path.Combine(directory, "experiment.log");

    /// <summary>
    /// The files whose last write failed for want of disk space, with the error. Each is rewritten whole at its next
    /// write (the journal holds what they project), so a write that succeeds later takes it off this list.
    /// </summary>
    public IReadOnlyDictionary<string, string> Unwritten
    {
        get
        {
            lock (gate) return new Dictionary<string, string>(unwritten);
        }
    }

    /// <summary>Takes a journaled event of run <paramref name="runId"/>.</summary>
    public void Apply(int runId, IRunEvent e)
    {
        lock (gate)
        {
            switch (e)
            {
                case ChunkCompleted chunk:
                    Rows(minibatches, runId).AddRange(chunk.Records.Select(MinibatchRowOf));
                    break;
                case ValidationCompleted validation:
                    Rows(minibatches, runId).AddRange(validation.Records.Select(MinibatchRowOf));
                    break;
                case EpochMetricsRecorded epoch:
                    Rows(epochs, runId).Add(new EpochRow(epoch.Mode, epoch.Epoch, epoch.Metrics,
                        Row([("mode", epoch.Mode.ToName()), ("epoch", Text(epoch.Epoch + 1))], epoch.Metrics)));
                    WriteMetrics(runId);
                    break;
                case RestoredFromCheckpoint restored:
                    Truncate(runId, restored.State.Run);
                    WriteMetrics(runId);
                    break;
                case RunEnded:
                    WriteMetrics(runId);
                    break;
            }
        }
    }

    /// <summary>The IC log: one row per IC operation (time, op id, run, operation, arguments, status, outcome, new run, and who asked when it was automatic).</summary>
    public string ControlLogFile => Path.Combine(directory, "ic-log.csv");

    /// <summary>Takes an IC operation's record as it now stands and rewrites <c>ic-log.csv</c>.</summary>
    public void Control(Actors.Control.ControlRecord record)
    {
        lock (gate)
        {
            controls[record.OpId] = record;
            Guarded(ControlLogFile, path => Write(path, controls.Values.OrderBy(c => c.OpId).Select(c => new Dictionary<string, string>
            {
                ["requested_utc"] = c.RequestedUtc.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
                ["op_id"] = Text(c.OpId),
                ["run_id"] = Text(c.Op.RunId),
                ["operation"] = c.Op.Name,
                ["arguments"] = c.Op.Arguments,
                ["status"] = c.Status.ToString().ToLowerInvariant(),
                ["outcome"] = c.Outcome,
                ["new_run_id"] = c.NewRunId is { } id ? Text(id) : "",
                ["resolved_utc"] = c.ResolvedUtc?.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture) ?? "",
                ["origin"] = c.Op.Origin ?? "",
            }).ToList()));
        }
    }

    /// <summary>
    /// The fit's manifest (<c>fit.json</c>: its definition and its runs, as the journal holds them): what
    /// <c>rapidfire resume --from-checkpoints</c> rebuilds the journal from when it is lost.
    /// </summary>
    public string ManifestFile => Path.Combine(directory, "fit.json");

    /// <summary>Writes <see cref="ManifestFile"/> (atomically).</summary>
    public void WriteManifest(Actors.Experiment.ExperimentProtocol.FitManifest manifest)
    {
        lock (gate)
            Guarded(ManifestFile, path =>
            {
                File.WriteAllText(path + ".tmp", Actors.Persistence.JournalSerializer.ToJson(manifest));
                File.Move(path + ".tmp", path, overwrite: true);
            });
    }

    /// <summary>Appends a line to <c>experiment.log</c>, with the time (a password or token in it masked: <see cref="SecretMask.MaskConnectionString"/>).</summary>
    public void Log(string line)
    {
        lock (gate)
            Guarded(LogFile, path => File.AppendAllText(path, $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {SecretMask.MaskConnectionString(line)}{Environment.NewLine}"));
    }

    private static MinibatchRow MinibatchRowOf(MinibatchRecord m)
    {
        var numbers = m.Numbers();
        return new(m.Mode, m.Epoch, m.Chunk, m.Step, numbers, Row(
            [("mode", m.Mode.ToName()), ("epoch", Text(m.Epoch + 1)), ("chunk", Text(m.Chunk + 1)), ("step", Text(m.Step + 1)), ("examples", Text(m.Examples))],
            numbers));
    }

    /// <summary>
    /// A run's journaled metrics so far: every minibatch (train and validation, in order) and every closed epoch, as
    /// the metric files hold them.
    /// </summary>
    public Api.RunMetrics Metrics(int runId)
    {
        lock (gate)
        {
            var points = minibatches.GetValueOrDefault(runId, [])
                .Select(r => new Api.MinibatchPoint(r.Mode.ToName(), r.Epoch + 1, r.Chunk + 1, r.Step + 1, r.Numbers)).ToList();
            var closed = epochs.GetValueOrDefault(runId, []).Select(r => new Api.EpochPoint(r.Mode.ToName(), r.Epoch + 1, r.Numbers)).ToList();
            return new Api.RunMetrics(runId, points, closed);
        }
    }

    /// <summary>Drops the rows of what a run lost when it went back to a checkpoint's state.</summary>
    private void Truncate(int runId, RunState state)
    {
        bool Kept(Mode mode, int epoch, int chunk, bool closedRow) =>
            epoch < state.EpochsDone || (epoch == state.EpochsDone && (closedRow
                ? (mode == Mode.Train ? state.TrainClosed : state.ValidationClosed)
                : (mode == Mode.Train ? chunk < state.ChunksDone : state.ValidationDone)));
        Rows(minibatches, runId).RemoveAll(r => !Kept(r.Mode, r.Epoch, r.Chunk, closedRow: false));
        Rows(epochs, runId).RemoveAll(r => !Kept(r.Mode, r.Epoch, 0, closedRow: true));
        written.Remove(MinibatchesFile(runId));
        written.Remove(EpochsFile(runId));
    }

    private string MinibatchesFile(int runId) => Path.Combine(MetricsDirectory, $"run-{runId}.minibatches.csv");

    private string EpochsFile(int runId) => Path.Combine(MetricsDirectory, $"run-{runId}.epochs.csv");

    /// <summary>
    /// Writes <c>runs.csv</c> (adding to the rows of earlier fits of the experiment). A clone's row names its parent
    /// (<c>cloned_from</c>) and whether it started warm, from <paramref name="definitions"/>.
    /// </summary>
    public void WriteRuns(IReadOnlyList<RunState> runs, IReadOnlyList<Actors.Experiment.ExperimentProtocol.RunDefinition>? definitions = null)
    {
        lock (gate)
        {
            var rows = File.Exists(RunsFile) ? CsvRows.Read(RunsFile).Rows : [];
            rows.RemoveAll(r => runs.Any(run => r.GetValueOrDefault("run_id") == Text(run.RunId)));
            foreach (var run in runs)
            {
                var row = RunRow(run);
                if (definitions?.FirstOrDefault(d => d.RunId == run.RunId) is { ClonedFrom: { } parent } clone)
                {
                    row["cloned_from"] = Text(parent);
                    row["warm_start"] = clone.Warm ? "true" : "false";
                }
                rows.Add(row);
            }
            WriteTable(RunsFile, rows, Export.ParquetTables.RunsColumn);
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
        foreach (var (key, value) in SecretMask.Mask(run.Config).Leaves()) row[key] = value switch
        {
            null => "",
            string text => text,
            double d => Text(d),
            _ => ConfigValue.ToJson(value),
        };
        if (run.ValidationHistory.Count > 0)
            foreach (var (metric, value) in run.ValidationHistory[^1]) row[$"val_{metric}"] = Text(value);
        row["error"] = run.Failure?.OneLine() ?? "";
        return row;
    }

    private void WriteMetrics(int runId)
    {
        if (minibatches.TryGetValue(runId, out var m)) WriteMetricTable(MinibatchesFile(runId), m.Select(r => r.Cells).ToList());
        if (epochs.TryGetValue(runId, out var e)) WriteMetricTable(EpochsFile(runId), e.Select(r => r.Cells).ToList());
    }

    /// <summary>
    /// Writes a metric table: the rows added since its last write are appended when they have no new column, else the
    /// file is rewritten whole (atomically). A failed write is rewritten whole the next time.
    /// </summary>
    private void WriteMetricTable(string csvPath, IReadOnlyList<Dictionary<string, string>> rows)
    {
        if (written.Remove(csvPath, out var before) && rows.Count >= before.Rows && File.Exists(csvPath) &&
            Enumerable.Range(before.Rows, rows.Count - before.Rows).All(i => rows[i].Keys.All(before.Columns.Contains)))
        {
            Guarded(csvPath, path =>
            {
                Append(path, before.Columns, rows, before.Rows);
                written[path] = before with { Rows = rows.Count };
            });
        }
        else
        {
            Guarded(csvPath, path =>
            {
                var columns = Write(path, rows);
                written[path] = new Written(columns, rows.Count);
            });
        }
        WriteParquet(csvPath, rows, Export.ParquetTables.MetricsColumn);
    }

    /// <summary>Writes a table's CSV, and its Parquet file beside it when Parquet is on.</summary>
    private void WriteTable(string csvPath, IReadOnlyList<Dictionary<string, string>> rows, Func<string, Export.ColumnType> parquetTypes)
    {
        Guarded(csvPath, path => Write(path, rows));
        WriteParquet(csvPath, rows, parquetTypes);
    }

    /// <summary>Writes a table's Parquet file beside its CSV when Parquet is on.</summary>
    private void WriteParquet(string csvPath, IReadOnlyList<Dictionary<string, string>> rows, Func<string, Export.ColumnType> types)
    {
        if (parquet) Guarded(Export.ParquetTables.PathFor(csvPath), path => Export.ParquetTables.Write(path, rows, types));
    }

    /// <summary>
    /// Writes <paramref name="path"/> (under the gate); a full disk leaves its last complete version, noted in
    /// <see cref="Unwritten"/>, and fails nothing else: the fit it belongs to is interrupted by the journal's own failure.
    /// </summary>
    private void Guarded(string path, Action<string> write)
    {
        try
        {
            write(path);
            unwritten.Remove(path);
        }
        catch (IOException e) when (Actors.Storage.OutOfSpace.Is(e))
        {
            try
            {
                File.Delete(path + ".tmp");
            }
            catch (IOException)
            {
                // it may not exist; the next write replaces it
            }
            unwritten[path] = e.Message;
        }
    }

    private static List<T> Rows<T>(Dictionary<int, List<T>> table, int runId)
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

    /// <summary>
    /// Writes rows with the union of their columns (first-seen order), which it returns; a missing cell is empty.
    /// Atomic: temp file, then rename.
    /// </summary>
    private static List<string> Write(string path, IReadOnlyList<Dictionary<string, string>> rows)
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
        return columns;
    }

    /// <summary>Appends rows <paramref name="from"/>.. of <paramref name="rows"/> to the CSV at <paramref name="path"/>, whose columns are <paramref name="columns"/>.</summary>
    private static void Append(string path, List<string> columns, IReadOnlyList<Dictionary<string, string>> rows, int from)
    {
        if (from == rows.Count) return;
        using var file = new FileStream(path, FileMode.Append, FileAccess.Write);
        using var writer = Sep.New(',').Writer(o => o with { Escape = true, WriteHeader = false }).To(file);
        for (var i = from; i < rows.Count; i++)
        {
            using var row = writer.NewRow();
            foreach (var column in columns) row[column].Set(rows[i].GetValueOrDefault(column, ""));
        }
    }

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Text(long value) => value.ToString(CultureInfo.InvariantCulture);
}
