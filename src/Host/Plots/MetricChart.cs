using ScottPlot;

namespace RapidFire.Host.Plots;

/// <summary>One line of a chart: a run's series and its legend text.</summary>
/// <param name="Series">The run's values.</param>
/// <param name="Label">The legend text: <c>run 2: hidden=32, optimizer.lr=0.003</c>.</param>
public sealed record ChartLine(MetricSeries Series, string Label);

/// <summary>Draws runs' metric series as a PNG line chart (ScottPlot on SkiaSharp; no display needed).</summary>
public static class MetricChart
{
    /// <summary>
    /// A sans-serif family the system has (ScottPlot's own guess takes the first family it finds, often a serif one);
    /// ScottPlot's default when none of these is installed.
    /// </summary>
    private static readonly Lazy<string> SansFont = new(() =>
        new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" }
            .FirstOrDefault(f => { using var face = SkiaSharp.SKFontManager.Default.MatchFamily(f); return face is not null; })
        ?? Fonts.Default);

    /// <summary>
    /// Writes a chart of <paramref name="lines"/> (one line per run, coloured by run id, with a legend) to the PNG
    /// <paramref name="path"/>, creating its folder. With <paramref name="markers"/> each value gets a dot (epoch-level
    /// charts have few points; a single one would otherwise not show). x is a count (minibatches or epochs): its ticks are whole.
    /// </summary>
    public static void WritePng(string path, IReadOnlyList<ChartLine> lines, string title, string xLabel, string yLabel,
        bool markers, int width = 1000, int height = 600)
    {
        var plot = new Plot();
        plot.Font.Set(SansFont.Value);
        // A run keeps its colour from chart to chart, whichever runs are drawn with it.
        IPalette palette = lines.Select(l => l.Series.RunId).DefaultIfEmpty(1).Max() <= 10
            ? new ScottPlot.Palettes.Category10()
            : new ScottPlot.Palettes.Category20();
        foreach (var line in lines)
        {
            var scatter = plot.Add.Scatter(line.Series.Xs.ToArray(), line.Series.Ys.ToArray(), palette.GetColor(Math.Max(0, line.Series.RunId - 1)));
            scatter.LegendText = line.Label;
            scatter.LineWidth = 2;
            scatter.MarkerSize = markers ? 7 : 0;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        // Below the chart: labels are long (the knobs that differ) and wrap into rows there.
        plot.ShowLegend(Edge.Bottom);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path));
        if (folder is not null) Directory.CreateDirectory(folder);
        // Written aside, then renamed: a dashboard or viewer polling the file never reads half a PNG.
        var temp = path + ".tmp.png";
        plot.SavePng(temp, width, height);
        File.Move(temp, path, overwrite: true);
    }
}
