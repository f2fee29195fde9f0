using System.Text.RegularExpressions;
using RapidFire.Host.Cli;
using RapidFire.Host.Plots;
using RapidFire.Spec;

namespace RapidFire.Host.Tests;

/// <summary>
/// One real fit through <c>rapidfire fit</c> with its output in a <see cref="StringWriter"/> (not a terminal): 2 runs of
/// the MNIST example on 15% of its digits, 2 epochs of 2 chunks (10 train minibatches per epoch).
/// </summary>
public sealed class TrainedExperiment : IDisposable
{
    private readonly SmallMnist mnist = new();

    public TrainedExperiment()
    {
        File.WriteAllText(mnist.ConfigPath, """
            { "user_knobs": { "model_type": "mlp", "hidden": [16, 32] },
              "train": { "epochs": 2, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
        Dir = Path.Combine(mnist.Directory, "experiments");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Code = RapidFireCli.Run(["fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", mnist.HandlePath,
            "--config", mnist.ConfigPath, "--experiment", "watched", "--dir", Dir, "--chunks", "2", "--devices", "cpu:2"], stdout, stderr);
        Out = stdout.ToString();
        Err = stderr.ToString();
    }

    public string Dir { get; }
    public string Folder => Path.Combine(Dir, "watched");
    public int Code { get; }
    public string Out { get; }
    public string Err { get; }

    public void Dispose() => mnist.Dispose();
}

/// <summary>The plain progress lines of a real fit, then <c>rapidfire plot</c> on what it wrote.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class FitProgressCliTests(TrainedExperiment fit) : IClassFixture<TrainedExperiment>
{
    private (int Code, string Out, string Err) Plot(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = RapidFireCli.Run(["plot", "--experiment", "watched", "--dir", fit.Dir, .. args], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Without_a_terminal_fit_prints_plain_progress_lines_and_no_escape_codes()
    {
        Assert.True(fit.Code == 0, fit.Err + fit.Out);
        var lines = fit.Out.Split(Environment.NewLine);
        foreach (var run in new[] { 1, 2 })
        {
            // Each run's first chunk and its last are always written; lines between are at most one per 5 s.
            var first = Array.IndexOf(lines, $"run {run}: epoch 1/2 chunk 1/2 trained (25%)");
            var last = Array.IndexOf(lines, $"run {run}: epoch 2/2 chunk 2/2 trained (100%)");
            Assert.True(first >= 0 && last > first, fit.Out);
            Assert.All(lines.Where(l => l.StartsWith($"run {run}: epoch", StringComparison.Ordinal)),
                l => Assert.Matches($@"^run {run}: epoch [12]/2 chunk [12]/2 trained \((25|50|75|100)%\)$", l));
        }
        Assert.Matches(new Regex(@"^training: \d/\d chunks, 0/[12] runs ended \(\d+%\)$", RegexOptions.Multiline), fit.Out);
        Assert.Matches(new Regex(@"^training: 8/8 chunks, [01]/2 runs ended \(100%\)$", RegexOptions.Multiline), fit.Out);
        Assert.Matches(new Regex(@"^checkpoints: 1 written, last run-[12]/e0000-c0001\.ckpt$", RegexOptions.Multiline), fit.Out);
        Assert.Contains("run 2: Completed (epochs) after 2 epoch(s)", fit.Out);
        Assert.DoesNotContain('\u001b', fit.Out);
        Assert.DoesNotContain('\u001b', fit.Err);
        Assert.DoesNotContain(ProgressBarCell, fit.Out);                               // bars are for terminals
    }

    private const string ProgressBarCell = "░";

    [Fact]
    public void Plot_draws_the_fits_train_loss_per_minibatch_with_a_line_per_run()
    {
        Assert.True(fit.Code == 0, fit.Err);
        var (code, output, error) = Plot("--metric", "loss");
        Assert.True(code == 0, error);
        var png = Path.Combine(fit.Folder, "plots", "loss.png");
        Assert.Equal($"wrote {png}: watched: train loss per minibatch, 2 run(s), 40 values", output.Trim());
        PngCheck.IsChart(png, 1000, 600, runs: 2, leastPixelsPerRun: 300);

        var files = MetricFiles.Read(fit.Folder);
        var series = files.RunIds.Select(id => files.Series(id, "loss", Mode.Train, MetricLevel.Minibatch)!).ToList();
        Assert.All(series, s => Assert.Equal(Enumerable.Range(1, 20).Select(i => (double)i), s.Xs));
        Assert.Equal(["run 1: hidden=16", "run 2: hidden=32"],
            PlotCommand.Legend(series, series.ToDictionary(s => s.RunId, s => files.Knobs(s.RunId)), files).Select(l => l.Label));
    }

    [Fact]
    public void Plot_draws_validation_accuracy_per_epoch_by_default()
    {
        Assert.True(fit.Code == 0, fit.Err);
        var (code, output, error) = Plot("--metric", "top1_accuracy", "--width", "800", "--height", "500");
        Assert.True(code == 0, error);
        Assert.Contains("watched: validation top1_accuracy per epoch, 2 run(s), 4 values", output);
        PngCheck.IsChart(Path.Combine(fit.Folder, "plots", "top1_accuracy.png"), 800, 500, runs: 2, leastPixelsPerRun: 100);
    }
}
