using RapidFire.Spec.Progress;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RapidFire.Host.Cli.Progress;

/// <summary>
/// The latest update of every task of long work, for a live view on a terminal: training, downloads, checkpoint
/// writes. Anyone doing such work reports to it (from any thread); the view draws it as lines of a bar and a detail.
/// </summary>
public sealed class ProgressBoard : IProgress<ProgressUpdate>
{
    private readonly object gate = new();
    private readonly List<ProgressUpdate> tasks = [];

    /// <inheritdoc />
    public void Report(ProgressUpdate value)
    {
        lock (gate)
        {
            var index = tasks.FindIndex(t => t.Task == value.Task);
            if (index >= 0) tasks[index] = value;
            else tasks.Add(value);
        }
    }

    /// <summary>Every task's latest update, in the order the tasks were first reported.</summary>
    public IReadOnlyList<ProgressUpdate> Tasks
    {
        get
        {
            lock (gate) return tasks.ToList();
        }
    }

    /// <summary>
    /// The tasks that <paramref name="shown"/> keeps (all by default), one line each: the task, a bar of
    /// <paramref name="width"/> cells with its percentage (none when its total is unknown) and its detail.
    /// </summary>
    public IRenderable Render(Func<ProgressUpdate, bool>? shown = null, int width = 30)
    {
        var lines = Tasks.Where(shown ?? (_ => true)).ToList();
        if (lines.Count == 0) return Text.Empty;
        var grid = new Grid();
        grid.AddColumn(new GridColumn().NoWrap());
        grid.AddColumn(new GridColumn().NoWrap());
        grid.AddColumn();
        foreach (var task in lines)
            grid.AddRow(new Text(task.Task, new Style(decoration: Decoration.Bold)),
                new Text(task.Total is null ? "" : ProgressBar.Text(task.Fraction, width), BarStyle(task)),
                new Text(task.Detail ?? ""));
        return grid;
    }

    /// <summary>Green when complete, the default colour otherwise.</summary>
    internal static Style BarStyle(ProgressUpdate update) =>
        update.Fraction >= 1 ? new Style(Color.Green) : Style.Plain;
}
