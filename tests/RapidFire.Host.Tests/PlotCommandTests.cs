using RapidFire.Host.Cli;
using RapidFire.Host.Plots;
using RapidFire.Spec;
using StbImageSharp;

namespace RapidFire.Host.Tests;

/// <summary>What a PNG chart holds: its size, and how many pixels of given colours lie in a region.</summary>
internal static class PngCheck
{
    /// <summary>Category10's first colours: runs 1, 2 and 3.</summary>
    public static readonly (byte R, byte G, byte B)[] RunColours = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)];

    public static ImageResult Open(string path)
    {
        Assert.True(File.Exists(path), $"no image {path}");
        return ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
    }

    /// <summary>Pixels within a small distance of <paramref name="colour"/> above <paramref name="bottom"/> (a fraction of the height).</summary>
    public static int Count(ImageResult image, (byte R, byte G, byte B) colour, double bottom = 1)
    {
        var count = 0;
        for (var y = 0; y < (int)(bottom * image.Height); y++)
            for (var x = 0; x < image.Width; x++)
            {
                var i = (y * image.Width + x) * 3;
                if (Math.Abs(image.Data[i] - colour.R) + Math.Abs(image.Data[i + 1] - colour.G) + Math.Abs(image.Data[i + 2] - colour.B) < 40) count++;
            }
        return count;
    }

    public static int DistinctColours(ImageResult image) =>
        Enumerable.Range(0, image.Width * image.Height).Select(p => (image.Data[p * 3] << 16) | (image.Data[p * 3 + 1] << 8) | image.Data[p * 3 + 2]).Distinct().Count();

    /// <summary>
    /// A real chart: the size asked for, many colours (text, antialiased lines), and each of the first
    /// <paramref name="runs"/> runs' colour drawn in the plot area (the top 70%; the legend is below it).
    /// </summary>
    public static void IsChart(string path, int width, int height, int runs, int leastPixelsPerRun)
    {
        var image = Open(path);
        Assert.Equal((width, height), (image.Width, image.Height));
        Assert.True(DistinctColours(image) > 20, $"{path} has {DistinctColours(image)} colours: blank?");
        for (var run = 0; run < runs; run++)
        {
            var inPlot = Count(image, RunColours[run], bottom: 0.7);
            Assert.True(inPlot >= leastPixelsPerRun, $"{path}: run {run + 1}'s colour has {inPlot} pixels in the plot area");
        }
    }
}

/// <summary>
/// <c>rapidfire plot</c> on metric files written by hand: which values it reads, where x starts for a warm clone,
/// its defaults, its legend, and its errors.
/// </summary>
public sealed class PlotCommandTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("rf-plot-").FullName;
    private string Folder => Path.Combine(dir, "exp");

    public PlotCommandTests()
    {
        var metrics = Directory.CreateDirectory(Path.Combine(Folder, "metrics")).FullName;
        // Runs 1 and 2 from scratch, 3 steps per epoch; run 3 a warm clone of run 1 from epoch 2 step 2; run 4 deleted.
        File.WriteAllText(Path.Combine(metrics, "run-1.minibatches.csv"), """
            mode,epoch,chunk,step,examples,loss,top1_accuracy
            train,1,1,1,32,2.0,0.1
            train,1,1,2,32,1.6,0.2
            train,1,2,3,32,1.2,0.3
            validation,1,1,1,32,1.3,0.4
            validation,1,1,2,16,1.1,0.5
            train,2,1,1,32,1.0,0.5
            train,2,1,2,32,NaN,0.6
            train,2,2,3,32,0.8,0.7
            validation,2,1,1,32,0.9,0.6
            validation,2,1,2,16,0.8,0.7
            """);
        File.WriteAllText(Path.Combine(metrics, "run-1.epochs.csv"), """
            mode,epoch,loss,top1_accuracy,recall_8
            train,1,1.6,0.2,0.1
            validation,1,1.2,0.45,0.2
            train,2,0.9,0.6,0.3
            validation,2,0.85,0.65,0.4
            """);
        File.WriteAllText(Path.Combine(metrics, "run-2.minibatches.csv"), """
            mode,epoch,chunk,step,examples,loss,top1_accuracy
            train,1,1,1,32,2.1,0.1
            train,1,1,2,32,1.9,0.15
            train,1,2,3,32,1.7,0.2
            validation,1,1,1,32,1.8,0.2
            validation,1,1,2,16,1.7,0.25
            """);
        File.WriteAllText(Path.Combine(metrics, "run-2.epochs.csv"), """
            mode,epoch,loss,top1_accuracy,recall_8
            train,1,1.9,0.15,0.05
            validation,1,1.75,0.22,0.1
            """);
        File.WriteAllText(Path.Combine(metrics, "run-3.minibatches.csv"), """
            mode,epoch,chunk,step,examples,loss,top1_accuracy
            train,2,2,2,32,0.9,0.6
            train,2,2,3,32,0.7,0.7
            validation,2,1,1,32,0.8,0.7
            validation,2,1,2,16,0.7,0.8
            """);
        File.WriteAllText(Path.Combine(metrics, "run-3.epochs.csv"), """
            mode,epoch,loss,top1_accuracy,recall_8
            train,2,0.8,0.65,0.35
            validation,2,0.75,0.75,0.45
            """);
        File.WriteAllText(Path.Combine(metrics, "run-4.minibatches.csv"), """
            mode,epoch,chunk,step,examples,loss,top1_accuracy
            train,1,1,1,32,2.2,0.1
            """);
        File.WriteAllText(Path.Combine(Folder, "runs.csv"), """
            run_id,status,ended_by,epochs_done,hidden,epochs,optimizer.name,optimizer.args.lr,val_loss,error,cloned_from,warm_start
            1,Completed,epochs,2,16,2,Adam,0.001,0.85,,,
            2,Stopped,user,1,32,2,Adam,0.001,1.75,,,
            3,Completed,epochs,2,16,2,Adam,0.003,0.75,,1,true
            4,Deleted,user,0,64,2,Adam,0.001,,,,
            """);
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private (int Code, string Out, string Err) Plot(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] named = args.Contains("--experiment") ? args : ["--experiment", "exp", .. args];
        var code = RapidFireCli.Run(["plot", "--dir", dir, .. named], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Minibatch_x_counts_a_runs_minibatches_from_its_start_and_a_warm_clone_goes_on_from_its_parent()
    {
        var files = MetricFiles.Read(Folder);
        Assert.Equal([1, 2, 3, 4], files.RunIds);
        var run1 = files.Series(1, "loss", Mode.Train, MetricLevel.Minibatch)!;
        Assert.Equal([1.0, 2, 3, 4, 6], run1.Xs);                                  // the NaN of step 5 is left out
        Assert.Equal([2.0, 1.6, 1.2, 1.0, 0.8], run1.Ys);
        Assert.Equal([5.0, 6], files.Series(3, "loss", Mode.Train, MetricLevel.Minibatch)!.Xs);
        Assert.Equal([1.0, 2, 3, 4], files.Series(1, "loss", Mode.Validation, MetricLevel.Minibatch)!.Xs);
        Assert.Equal([1.0, 2], files.Series(1, "top1_accuracy", Mode.Validation, MetricLevel.Epoch)!.Xs);
        Assert.Equal([0.45, 0.65], files.Series(1, "top1_accuracy", Mode.Validation, MetricLevel.Epoch)!.Ys);
        Assert.Null(files.Series(2, "recall_8", Mode.Train, MetricLevel.Minibatch));

        Assert.Equal(["loss", "top1_accuracy"], files.MetricsOf(Mode.Train, MetricLevel.Minibatch));
        Assert.Equal(["loss", "top1_accuracy", "recall_8"], files.MetricsOf(Mode.Validation, MetricLevel.Epoch));
        Assert.Equal((1, true), files.ClonedFrom(3));
        Assert.Equal("Deleted", files.Status(4));
        Assert.Equal(new Dictionary<string, string> { ["hidden"] = "16", ["epochs"] = "2", ["optimizer.name"] = "Adam", ["optimizer.args.lr"] = "0.003" },
            files.Knobs(3));
    }

    [Fact]
    public void Loss_defaults_to_the_training_curve_other_metrics_to_validation_per_epoch()
    {
        var files = MetricFiles.Read(Folder);
        (Mode, MetricLevel)? Resolve(string metric, Mode? mode = null, MetricLevel? level = null) =>
            PlotCommand.Resolve(metric, mode, level, (m, l) => files.MetricsOf(m, l).Contains(metric));

        Assert.Equal((Mode.Train, MetricLevel.Minibatch), Resolve("loss"));
        Assert.Equal((Mode.Validation, MetricLevel.Epoch), Resolve("loss", Mode.Validation));
        Assert.Equal((Mode.Validation, MetricLevel.Epoch), Resolve("top1_accuracy"));
        Assert.Equal((Mode.Train, MetricLevel.Minibatch), Resolve("top1_accuracy", Mode.Train));
        Assert.Equal((Mode.Train, MetricLevel.Minibatch), Resolve("top1_accuracy", level: MetricLevel.Minibatch));   // minibatch level: the training curve
        Assert.Equal((Mode.Validation, MetricLevel.Minibatch), Resolve("top1_accuracy", Mode.Validation, MetricLevel.Minibatch));
        Assert.Equal((Mode.Train, MetricLevel.Epoch), Resolve("recall_8", Mode.Train));              // only aggregated per epoch
        Assert.Null(Resolve("recall_8", level: MetricLevel.Minibatch));
        Assert.Null(Resolve("nope"));
        // A metric with train values only falls back to them.
        Assert.Equal((Mode.Train, MetricLevel.Minibatch), PlotCommand.Resolve("lr", null, null, (m, l) => m == Mode.Train));
    }

    [Fact]
    public void Smoothing_is_a_trailing_mean()
    {
        var smoothed = PlotCommand.Smoothed(new MetricSeries(1, [1, 2, 3, 4], [4, 2, 6, 0]), 2);
        Assert.Equal([4.0, 3, 4, 3], smoothed.Ys);
        Assert.Equal([1.0, 2, 3, 4], smoothed.Xs);
    }

    [Fact]
    public void The_legend_names_each_run_its_parent_and_the_knobs_that_differ()
    {
        var files = MetricFiles.Read(Folder);
        var series = new[] { 1, 2, 3 }.Select(id => files.Series(id, "loss", Mode.Train, MetricLevel.Minibatch)!).ToList();
        var labels = PlotCommand.Legend(series, series.ToDictionary(s => s.RunId, s => files.Knobs(s.RunId)), files).Select(l => l.Label);
        Assert.Equal(["run 1: hidden=16, optimizer.lr=0.001", "run 2: hidden=32, optimizer.lr=0.001", "run 3 (clone of 1, warm): hidden=16, optimizer.lr=0.003"], labels);
        Assert.Equal(["run 2"], PlotCommand.Legend([series[1]], new Dictionary<int, IReadOnlyDictionary<string, string>>(), files).Select(l => l.Label));
    }

    [Fact]
    public void Plot_writes_the_default_png_with_a_line_per_run_and_leaves_deleted_runs_out()
    {
        var (code, output, error) = Plot("--metric", "loss");
        Assert.True(code == 0, error);
        var png = Path.Combine(Folder, "plots", "loss.png");
        Assert.Equal($"wrote {png}: exp: train loss per minibatch, 3 run(s), 10 values", output.Trim());
        PngCheck.IsChart(png, 1000, 600, runs: 3, leastPixelsPerRun: 60);

        (code, output, error) = Plot("--metric", "loss", "--mode", "validation", "--width", "640", "--height", "400");
        Assert.True(code == 0, error);
        Assert.Contains("exp: validation loss per epoch, 3 run(s), 4 values", output);
        PngCheck.IsChart(Path.Combine(Folder, "plots", "loss-validation-epoch.png"), 640, 400, runs: 3, leastPixelsPerRun: 15);   // runs 2 and 3 are one dot each

        var chosen = Path.Combine(dir, "out", "deleted.png");
        (code, output, error) = Plot("--metric", "loss", "--runs", "4", "--out", chosen);
        Assert.True(code == 0, error);
        Assert.Contains("1 run(s), 1 values", output);
        Assert.True(File.Exists(chosen));
    }

    [Fact]
    public void An_unknown_metric_lists_the_metrics_there_are()
    {
        var (code, _, error) = Plot("--metric", "accuracy");
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains("experiment exp has no metric 'accuracy'; its metrics are: " +
                        "loss (train minibatch, train epoch, validation minibatch, validation epoch); " +
                        "top1_accuracy (train minibatch, train epoch, validation minibatch, validation epoch); " +
                        "recall_8 (train epoch, validation epoch)", error);

        (code, _, error) = Plot("--metric", "recall_8", "--level", "minibatch");
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains("metric 'recall_8' of experiment exp has no minibatch values; it has train epoch, validation epoch values", error);

        (code, _, error) = Plot("--metric", "loss", "--runs", "2,9");
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains("no metric files of run 9; runs with metric files: 1, 2, 3, 4", error);
        Assert.False(Directory.Exists(Path.Combine(Folder, "plots")));
    }

    [Fact]
    public void A_missing_experiment_names_its_folder_and_one_without_metric_files_says_so()
    {
        var (code, _, error) = Plot("--metric", "loss", "--experiment", "nope");
        Assert.Equal(PlotCommand.NoData, code);
        Assert.Contains($"there is no experiment nope in {dir} (no folder {Path.Combine(dir, "nope")})", error);

        Directory.CreateDirectory(Path.Combine(dir, "empty"));
        (code, _, error) = Plot("--metric", "loss", "--experiment", "empty");
        Assert.Equal(PlotCommand.NoData, code);
        Assert.Contains($"experiment empty has no metric files yet ({Path.Combine(dir, "empty", "metrics")})", error);
    }
}
