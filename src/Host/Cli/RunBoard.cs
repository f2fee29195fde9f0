using System.Collections.Concurrent;
using System.Globalization;
using RapidFire.Actors.Runs;
using RapidFire.Host.Cli.Progress;
using RapidFire.Spec;
using RapidFire.Spec.Progress;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RapidFire.Host.Cli;

/// <summary>The live state of every run, fed by the experiment's events (on runtime threads).</summary>
internal sealed class RunBoard(IReadOnlyList<Config> configs)
{
    private readonly ConcurrentDictionary<int, RunState> runs = new();
    private readonly ConcurrentDictionary<int, double> lastTrainLoss = new();

    public void Take(ExperimentEvent e)
    {
        switch (e)
        {
            case RunChanged changed:
                runs[changed.Run.RunId] = changed.Run;
                break;
            case MinibatchDone { Minibatch: { Mode: Mode.Train, Loss: { } loss } m }:
                lastTrainLoss[m.RunId] = loss;
                break;
        }
    }

    /// <summary>Without a terminal: one line per closed epoch and per ended run.</summary>
    public static void Log(ExperimentEvent e, TextWriter output)
    {
        if (LogLines.Of(e, full: false) is { } line) output.WriteLine(line);
    }

    /// <summary>
    /// The live view: the bars of all long work but the runs' own (all runs' training, checkpoint writes,
    /// downloads), then the table with a bar per run.
    /// </summary>
    public IRenderable LiveView(ProgressBoard work) =>
        new Rows(work.Render(t => !(t.Activity == ProgressActivity.Training && t.RunId is not null)), Table(bars: true));

    /// <summary>The runs' table; with <paramref name="bars"/>, a bar per run of its chunks trained out of all it will train.</summary>
    public Table Table(IReadOnlyList<RunState>? final = null, bool bars = false)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("run");
        table.AddColumn("status");
        table.AddColumn("progress");
        if (bars) table.AddColumn("trained");
        // Deleted runs leave the live views (runs.csv and the journal keep them).
        var states = (final ?? runs.Values.OrderBy(r => r.RunId).ToList()).Where(r => r.Status != RunStatus.Deleted).ToList();
        // The knobs that vary among the runs shown (clones bring their own), or among the configs before any reported.
        var varying = Varying(states.Count > 0 ? states.Select(r => r.Config).ToList() : configs);
        foreach (var knob in varying) table.AddColumn(knob);
        table.AddColumn(new TableColumn("train loss").RightAligned());
        var metricNames = states.SelectMany(r => r.ValidationHistory.Count > 0 ? r.ValidationHistory[^1].Keys : []).Distinct().ToList();
        foreach (var metric in metricNames) table.AddColumn(new TableColumn($"val {metric}").RightAligned());
        foreach (var run in states)
        {
            var cells = new List<IRenderable>
            {
                new Text(run.RunId.ToString(CultureInfo.InvariantCulture)),
                new Markup(Status(run)),
                new Text(run.Where),
            };
            if (bars)
            {
                var progress = TrainingProgress.Of(run);
                cells.Add(new Text(ProgressBar.Text(progress.Fraction, 12), ProgressBoard.BarStyle(progress)));
            }
            cells.AddRange(varying.Select(k => new Text(Knob(run.Config, k))));
            cells.Add(new Text(Number(lastTrainLoss.TryGetValue(run.RunId, out var loss) ? loss : run.LastTrainLoss)));
            var last = run.ValidationHistory.Count > 0 ? run.ValidationHistory[^1] : null;
            cells.AddRange(metricNames.Select(m => new Text(Number(last is not null && last.TryGetValue(m, out var v) ? v : null))));
            table.AddRow(cells);
        }
        return table;
    }

    private static string Status(RunState run) => run.Status switch
    {
        RunStatus.Completed => $"[green]Completed[/] ({run.EndedBy})",
        RunStatus.Failed => $"[red]Failed[/]",
        RunStatus.Stopped => $"[yellow]Stopped[/] ({run.EndedBy})",
        var s => s.ToString(),
    };

    private static string Number(double? value) => LogLines.Number(value);

    /// <summary>The knobs whose values differ between runs: the ones worth a column.</summary>
    private static IReadOnlyList<string> Varying(IReadOnlyList<Config> configs) =>
        VaryingKnobs.Of(configs.Select(c => (IReadOnlyDictionary<string, string>)Leaves(c).DistinctBy(kv => kv.Key).ToDictionary()).ToList());

    private static string Knob(Config cfg, string path) =>
        Leaves(cfg).FirstOrDefault(kv => kv.Key == path).Value ?? "";

    /// <summary>A run's knobs for display: <c>optimizer.lr</c> rather than <c>optimizer.args.lr</c>.</summary>
    private static IEnumerable<KeyValuePair<string, string>> Leaves(Config cfg) =>
        SecretMask.Mask(cfg).Leaves().Select(kv => KeyValuePair.Create(VaryingKnobs.Display(kv.Key), ConfigValue.ToJson(kv.Value).Trim('"')));
}
