using System.Globalization;
using RapidFire.Spec;

namespace RapidFire.Host.Plots;

/// <summary>Which rows of the metric files a chart reads: one value per minibatch, or one per closed epoch.</summary>
public enum MetricLevel
{
    /// <summary><c>run-N.minibatches.csv</c>: every minibatch's value.</summary>
    Minibatch,
    /// <summary><c>run-N.epochs.csv</c>: every closed epoch's aggregated value.</summary>
    Epoch,
}

/// <summary>One run's values of one metric: x (minibatches or epochs since the run's start) and y.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Xs">Minibatch count (1-based) or epoch (1-based), increasing.</param>
/// <param name="Ys">The metric's values, finite.</param>
public sealed record MetricSeries(int RunId, IReadOnlyList<double> Xs, IReadOnlyList<double> Ys);

/// <summary>
/// The metric files of an experiment folder, as they stand (while it trains or after): under <c>metrics/</c> each run's
/// <c>run-N.minibatches.csv</c> (<c>mode,epoch,chunk,step,examples,loss,&lt;metrics&gt;...</c>) and
/// <c>run-N.epochs.csv</c> (<c>mode,epoch,&lt;metrics&gt;...</c>), and <c>runs.csv</c> for the runs' knobs, status and
/// parents. The experiment writes each file whole (a temporary file, then a rename), so reading during a fit is safe;
/// the files grow when a run closes an epoch and when it ends.
/// </summary>
public sealed class MetricFiles
{
    /// <summary>Columns of <c>runs.csv</c> that are not knobs.</summary>
    private static readonly HashSet<string> RunColumns = ["run_id", "status", "ended_by", "epochs_done", "error", "cloned_from", "warm_start"];

    /// <summary>Columns of the metric files that are not metrics.</summary>
    private static readonly HashSet<string> KeyColumns = ["mode", "epoch", "chunk", "step", "examples"];

    private sealed record Row(string Mode, int Epoch, int Step, Dictionary<string, double> Values);

    private readonly Dictionary<(int Run, MetricLevel Level), List<Row>> rows = [];
    private readonly Dictionary<int, Dictionary<string, string>> runRows = [];

    private MetricFiles(string folder) => Folder = folder;

    /// <summary>The experiment folder.</summary>
    public string Folder { get; }

    /// <summary>The folder of the metric files.</summary>
    public string MetricsFolder => Path.Combine(Folder, "metrics");

    /// <summary>The runs that have metric files, in id order.</summary>
    public IReadOnlyList<int> RunIds => rows.Keys.Select(k => k.Run).Distinct().Order().ToList();

    /// <summary>
    /// Reads the metric files and <c>runs.csv</c> (when there is one) of the experiment folder <paramref name="folder"/>.
    /// A run whose files are missing simply has no values yet.
    /// </summary>
    public static MetricFiles Read(string folder)
    {
        var files = new MetricFiles(folder);
        if (Directory.Exists(files.MetricsFolder))
            foreach (var path in Directory.EnumerateFiles(files.MetricsFolder, "run-*.csv"))
            {
                var name = Path.GetFileName(path);
                var level = name.EndsWith(".minibatches.csv", StringComparison.Ordinal) ? MetricLevel.Minibatch
                    : name.EndsWith(".epochs.csv", StringComparison.Ordinal) ? MetricLevel.Epoch
                    : (MetricLevel?)null;
                var id = name["run-".Length..name.IndexOf('.', StringComparison.Ordinal)];
                if (level is null || !int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var runId)) continue;
                files.rows[(runId, level.Value)] = ReadRows(path, level.Value);
            }
        var runs = Path.Combine(folder, "runs.csv");
        if (File.Exists(runs))
            foreach (var row in ReadTable(runs))
                if (int.TryParse(row.GetValueOrDefault("run_id"), NumberStyles.None, CultureInfo.InvariantCulture, out var runId))
                    files.runRows[runId] = row;
        return files;
    }

    /// <summary>The metrics that have values in <paramref name="mode"/> at <paramref name="level"/>, in first-seen order.</summary>
    public IReadOnlyList<string> MetricsOf(Mode mode, MetricLevel level) =>
        rows.Where(kv => kv.Key.Level == level).OrderBy(kv => kv.Key.Run)
            .SelectMany(kv => kv.Value).Where(r => r.Mode == mode.ToName())
            .SelectMany(r => r.Values.Keys).Distinct().ToList();

    /// <summary>Whether <paramref name="runId"/> has a row in <c>runs.csv</c>.</summary>
    public bool HasRunRow(int runId) => runRows.ContainsKey(runId);

    /// <summary>A run's status as <c>runs.csv</c> has it (<c>Completed</c>, <c>Deleted</c>...), or null.</summary>
    public string? Status(int runId) => runRows.TryGetValue(runId, out var row) ? row.GetValueOrDefault("status") : null;

    /// <summary>The run a clone was made from, as <c>runs.csv</c> has it, and whether it started warm.</summary>
    public (int Parent, bool Warm)? ClonedFrom(int runId) =>
        runRows.TryGetValue(runId, out var row) &&
        int.TryParse(row.GetValueOrDefault("cloned_from"), NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            ? (parent, row.GetValueOrDefault("warm_start") == "true")
            : null;

    /// <summary>A run's knobs by dotted path (<c>optimizer.args.lr</c>) as <c>runs.csv</c> has them; empty when it has no row yet.</summary>
    public IReadOnlyDictionary<string, string> Knobs(int runId) =>
        runRows.TryGetValue(runId, out var row)
            ? row.Where(kv => !RunColumns.Contains(kv.Key) && !kv.Key.StartsWith("val_", StringComparison.Ordinal) && kv.Value.Length > 0)
                .ToDictionary(kv => kv.Key, kv => kv.Value)
            : new Dictionary<string, string>();

    /// <summary>
    /// A run's values of <paramref name="metric"/> in <paramref name="mode"/> at <paramref name="level"/>; null when it
    /// has none. At minibatch level x counts the mode's minibatches since the run's start, <c>(epoch - 1) × S + step</c>
    /// with S the minibatches of an epoch's pass: a warm clone's rows start where its parent left off. At epoch level x
    /// is the epoch. Missing and non-finite values are left out.
    /// </summary>
    public MetricSeries? Series(int runId, string metric, Mode mode, MetricLevel level)
    {
        var name = mode.ToName();
        var points = RowsOf(runId, level).Where(r => r.Mode == name && r.Values.TryGetValue(metric, out var v) && double.IsFinite(v)).ToList();
        if (points.Count == 0) return null;
        var perEpoch = level == MetricLevel.Minibatch ? StepsPerEpoch(runId, name) : 0;
        var xs = points.Select(r => level == MetricLevel.Epoch ? r.Epoch : (double)(r.Epoch - 1) * perEpoch + r.Step).ToList();
        return new MetricSeries(runId, xs, points.Select(r => r.Values[metric]).ToList());
    }

    /// <summary>
    /// Minibatches in an epoch's pass of a mode: the largest step of the run's rows (exact once it has a full epoch),
    /// or of its parent's for a clone that has not finished one. Only later epochs' x depend on it.
    /// </summary>
    private int StepsPerEpoch(int runId, string mode, int depth = 0)
    {
        var own = RowsOf(runId, MetricLevel.Minibatch).Where(r => r.Mode == mode).Select(r => r.Step).DefaultIfEmpty(0).Max();
        return ClonedFrom(runId) is { Parent: var parent } && parent != runId && depth < 32
            ? Math.Max(own, StepsPerEpoch(parent, mode, depth + 1))
            : own;
    }

    private List<Row> RowsOf(int runId, MetricLevel level) => rows.GetValueOrDefault((runId, level), []);

    private static List<Row> ReadRows(string path, MetricLevel level) =>
        ReadTable(path).Select(cells =>
        {
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (column, text) in cells)
                if (!KeyColumns.Contains(column) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                    values[column] = value;
            return new Row(cells.GetValueOrDefault("mode", ""), Int(cells.GetValueOrDefault("epoch")),
                level == MetricLevel.Minibatch ? Int(cells.GetValueOrDefault("step")) : 0, values);
        }).ToList();

    private static int Int(string? text) => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;

    private static List<Dictionary<string, string>> ReadTable(string path) => CsvRows.Read(path).Rows;
}
