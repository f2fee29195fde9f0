using RapidFire.Host.Api;
using RapidFire.Host.Cli;

namespace RapidFire.Host.Tests;

/// <summary>
/// End to end: `rapidfire fit` trains in a child process while this process steers it with `rapidfire runs stop` and
/// `rapidfire runs clone --warm` through its HTTP API; the child is then killed and `rapidfire resume` finishes the fit.
/// </summary>
[Collection(ExperimentCollection.Name)]
public sealed class ControlCliTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("rf-control-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private string Experiments => Path.Combine(directory, "experiments");

    private (int Code, string Out, string Err) Cli(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = RapidFireCli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static List<Dictionary<string, string>> Rows(string path) => CsvRows.Read(path).Rows;

    private ChildCli StartFit(string name, params string[] more)
    {
        var data = RepoPaths.MnistExample("data");
        var handle = Path.Combine(directory, "handle.json");
        var configs = Path.Combine(directory, "configs.json");
        File.WriteAllText(handle, $$"""
            { "locators": { "train": "{{data}}/train.csv", "validation": "{{data}}/validation.csv", "objects": "{{data}}" },
              "download_columns": ["filepath"], "fraction": 0.25, "seed": 3 }
            """);
        File.WriteAllText(configs, """
            { "user_knobs": { "model_type": "cnn", "hidden": [32, 64], "dropout": 0.1 },
              "train": { "epochs": 20, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
        return ChildCli.Start(["fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", handle, "--config", configs,
            "--experiment", name, "--dir", Experiments, "--chunks", "4", .. more]);
    }

    /// <summary>Waits until the child's API answers, then until <paramref name="applied"/> operations took effect after the caller's requests.</summary>
    private static async Task Until(ChildCli child, Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            Assert.False(child.HasExited, child.Output);
            Assert.True(DateTime.UtcNow < deadline, $"{what}: {child.Output}");
            await Task.Delay(50);
        }
    }

    private static int Applied(string icLog) => File.Exists(icLog) ? Rows(icLog).Count(r => r["status"] == "applied") : 0;

    [Fact]
    public async Task A_second_experiment_in_the_directory_of_another_process_names_its_owner()
    {
        using var child = StartFit("holder");
        await Until(child, async () => await HostFile.FindLiveAsync(Path.Combine(Experiments, "holder"), TimeSpan.FromSeconds(2)) is not null,
            "the fit's API did not come up");

        var refused = Cli("fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", Path.Combine(directory, "handle.json"),
            "--config", Path.Combine(directory, "configs.json"), "--experiment", "second", "--dir", Experiments);

        Assert.Equal(FitCommand.CouldNotStart, refused.Code);
        Assert.Matches($@"another experiment is active in {System.Text.RegularExpressions.Regex.Escape(Experiments)} \(experiment 'holder', process \d+, since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", refused.Err);
        Assert.False(Directory.Exists(Path.Combine(Experiments, "second")), "the refused fit leaves no folder");
        child.Kill();
    }

    [Fact]
    public async Task Runs_stopped_and_warm_cloned_from_another_process_survive_a_kill_and_resume()
    {
        var experiment = Path.Combine(Experiments, "steered");
        using var child = StartFit("steered");
        await Until(child, async () => await HostFile.FindLiveAsync(experiment, TimeSpan.FromSeconds(2)) is not null, "the fit's API did not come up");

        var stop = Cli("runs", "stop", "1", "--experiment", "steered", "--dir", Experiments);
        Assert.True(stop.Code == 0, stop.Out + stop.Err);
        Assert.Contains("op 1: stop run 1", stop.Out);
        var clone = Cli("runs", "clone", "2", "--experiment", "steered", "--dir", Experiments, "--set", "optimizer.args.lr=0.001", "--warm");
        Assert.True(clone.Code == 0, clone.Out + clone.Err);
        Assert.Contains("op 2: clone-warm run 2", clone.Out);
        var refused = Cli("runs", "clone", "2", "--experiment", "steered", "--dir", Experiments, "--set", "hidden=16", "--warm");
        Assert.Equal(1, refused.Code);
        Assert.True(refused.Err.Contains("changing hidden changes the model's architecture"), refused.Err + refused.Out);

        // Both took effect (at their runs' chunk boundaries) before the kill.
        var icLog = Path.Combine(experiment, "ic-log.csv");
        await Until(child, () => Task.FromResult(Applied(icLog) >= 2), "the operations did not take effect");
        var list = Cli("runs", "list", "--experiment", "steered", "--dir", Experiments);
        Assert.Equal(0, list.Code);
        Assert.Contains("Stopped", list.Out);
        Assert.False(child.HasExited, "the fit ended before it could be killed: " + child.Output);
        child.Kill();

        var (code, output) = await ChildCli.RunAsync("resume", "--experiment", "steered", "--dir", Experiments);
        Assert.True(code == 0, output);

        var runs = Rows(Path.Combine(experiment, "runs.csv")).ToDictionary(r => r["run_id"]);
        Assert.Equal(("Stopped", "user"), (runs["1"]["status"], runs["1"]["ended_by"]));
        Assert.True(int.Parse(runs["1"]["epochs_done"]) < 20);
        Assert.Equal("Completed", runs["2"]["status"]);
        Assert.Equal(("Completed", "0.001", "64"), (runs["3"]["status"], runs["3"]["optimizer.args.lr"], runs["3"]["hidden"]));
        Assert.Equal(("2", "true"), (runs["3"]["cloned_from"], runs["3"]["warm_start"]));
        Assert.Equal("", runs["1"]["cloned_from"]);

        var log = Rows(icLog);
        Assert.Equal(["stop", "clone-warm", "clone-warm"], log.Select(r => r["operation"]));
        Assert.Equal(["applied", "applied", "rejected"], log.Select(r => r["status"]));
        Assert.Equal("optimizer.args.lr=0.001", log[1]["arguments"]);
        Assert.Equal("3", log[1]["new_run_id"]);
        Assert.Contains("run 3 created from run 2, warm", log[1]["outcome"]);
        var notRunning = Cli("runs", "list", "--experiment", "steered", "--dir", Experiments);
        Assert.Contains("is not running", notRunning.Out);
        var finishedLog = Cli("runs", "log", "--experiment", "steered", "--dir", Experiments);
        Assert.Equal(0, finishedLog.Code);
        Assert.Contains("its IC log", finishedLog.Out);
        Assert.Contains("clone-warm", finishedLog.Out);
    }

    [Fact]
    public async Task A_run_stopped_before_a_kill_resumes_from_its_checkpoint_when_checkpoints_are_taken_every_epoch()
    {
        var settings = Path.Combine(directory, "epoch.conf");
        File.WriteAllText(settings, "rapidfire.save-strategy = epoch");
        var experimentPath = Path.Combine(Experiments, "epochly");
        using (var child = StartFit("epochly", "--settings", settings))
        {
            await Until(child, async () => await HostFile.FindLiveAsync(experimentPath, TimeSpan.FromSeconds(2)) is not null, "the fit's API did not come up");
            Assert.Equal(0, Cli("runs", "stop", "1", "--experiment", "epochly", "--dir", Experiments).Code);
            await Until(child, () => Task.FromResult(Applied(Path.Combine(experimentPath, "ic-log.csv")) >= 1), "the stop did not take effect");
            Assert.False(child.HasExited, "the fit ended before it could be killed: " + child.Output);
            child.Kill();
        }

        using var experiment = Experiment.Resume("epochly", Experiments,
            Akka.Configuration.ConfigurationFactory.ParseString("rapidfire.save-strategy = epoch"));
        var fit = experiment.ResumeFitAsync();
        var stopped = await experiment.RunsAsync();
        while (!stopped.Fitting || stopped.Runs.Count < 2 || stopped.Runs.Any(r => r.Status == Actors.Runs.RunStatus.New))
        {
            await Task.Delay(20);
            stopped = await experiment.RunsAsync();
        }
        Assert.Equal(Actors.Runs.RunStatus.Stopped, stopped.Runs.Single(r => r.RunId == 1).Status);
        var resumed = await experiment.ResumeRunAsync(1);
        Assert.Equal(Actors.Control.ControlStatus.Applied, resumed.Status);
        var result = await fit;
        var run1 = result.Runs.Single(r => r.RunId == 1);
        Assert.Equal(Actors.Runs.RunStatus.Completed, run1.Status);
        Assert.True(run1.ResumedByUser);
        // It went back to its newest checkpoint (an epoch's end) when the stop had fallen inside an epoch.
        Assert.Equal(run1.EpochsDone * run1.ChunksPerEpoch, run1.ChunkMetrics.Count);
        var stoppedAfter = int.Parse(System.Text.RegularExpressions.Regex.Match(
            (await experiment.ControlLogAsync())[0].Outcome, "stopped after ([0-9]+) chunks").Groups[1].Value);
        var journal = File.ReadAllText(Path.Combine(experimentPath, "experiment.log"));
        if (stoppedAfter % 4 != 0) Assert.Matches("warning: run 1: .*(no valid checkpoint is left, so the run starts over|resuming from)", journal);
        else Assert.DoesNotContain("warning: run 1:", journal);
        var log = (await experiment.ControlLogAsync()).Select(c => (c.Op.Name, c.Status)).ToList();
        Assert.Equal([("stop", Actors.Control.ControlStatus.Applied), ("resume", Actors.Control.ControlStatus.Applied)], log);
    }
}
