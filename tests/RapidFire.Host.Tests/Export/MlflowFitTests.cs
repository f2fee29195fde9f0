using System.Collections.Concurrent;
using RapidFire.Actors.Runs;
using RapidFire.Host.Export;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host.Tests.Export;

/// <summary>A real fit exported to the stand-in MLflow server.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class MlflowFitTests : IAsyncLifetime
{
    private readonly SmallMnist mnist = new();
    private MlflowSchemaServer server = null!;

    public async Task InitializeAsync()
    {
        server = await MlflowSchemaServer.StartAsync();
        File.WriteAllText(mnist.ConfigPath, """
            { "user_knobs": { "model_type": "mlp", "hidden": [16, 32], "hub_token": "hf_abc123" },
              "train": { "epochs": 2, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        mnist.Dispose();
    }

    private MlflowOptions Options => new(new Uri(server.Url)) { SendInterval = TimeSpan.FromMilliseconds(100), RetryDelay = TimeSpan.FromMilliseconds(10) };

    [Fact]
    public async Task A_fit_exports_one_MLflow_run_per_run_with_its_knobs_metrics_by_step_and_final_status()
    {
        using var experiment = new Experiment("mlflow-fit", Path.Combine(mnist.Directory, "experiments"));
        FitResult result;
        await using (var mlflow = MlflowExporter.Attach(experiment, Options))
        {
            result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));
            await mlflow.FlushAsync();
        }

        Assert.Empty(server.Rejected);
        Assert.Equal(["mlflow-fit"], server.Experiments.Values);
        Assert.Equal(2, server.Runs.Count);
        foreach (var state in result.Runs)
        {
            Assert.Equal(RunStatus.Completed, state.Status);
            var run = server.RunNamed($"run-{state.RunId}");
            Assert.Equal($"{state.RunId}", run.Tags["rapidfire.run_id"]);
            Assert.Equal(("FINISHED", "Completed", "epochs"), (run.Status, run.Tags["rapidfire.status"], run.Tags["rapidfire.ended_by"]));
            Assert.True(run.EndTime >= run.StartTime);

            // params = the knobs, the secret one masked
            var knobs = state.Config.Leaves().Select(kv => kv.Key).ToList();
            Assert.Equal(knobs, run.Params.Keys);
            Assert.Equal("***", run.Params["hub_token"]);
            Assert.Equal(state.Config.Leaves().Single(kv => kv.Key == "hidden").Value!.ToString(), run.Params["hidden"]);
            Assert.Equal("0.003", run.Params["optimizer.args.lr"]);

            // train loss per minibatch: 2 epochs of 10 minibatches (300 rows / 32), steps 1..20 in order
            var losses = run.MetricsOf("minibatch_loss").ToList();
            Assert.Equal(Enumerable.Range(1, 20).Select(s => (long)s), losses.Select(m => m.Step));
            Assert.All(losses, m => Assert.True(m.Value > 0 && double.IsFinite(m.Value)));
            Assert.Equal(20, run.MetricsOf("minibatch_top1_accuracy").Count());

            // validation and train metrics per epoch, equal to the run's
            foreach (var metric in new[] { "loss", "top1_accuracy" })
            {
                Assert.Equal(state.ValidationHistory.Select((h, e) => ((long)e + 1, h[metric])), run.MetricsOf($"val_{metric}").Select(m => (m.Step, m.Value)));
                Assert.Equal(state.TrainHistory.Select((h, e) => ((long)e + 1, h[metric])), run.MetricsOf($"train_{metric}").Select(m => (m.Step, m.Value)));
            }
        }
        Assert.DoesNotContain(server.Exchanges, e => e.Body?.Contains("hf_abc123") == true);
        var log = File.ReadAllText(Path.Combine(experiment.Path, "experiment.log"));
        Assert.Contains("mlflow: exporting to http://127.0.0.1", log);
        Assert.DoesNotContain("warning: mlflow", log);
        Assert.True(File.Exists(Path.Combine(experiment.Path, MlflowExporter.StateFileName)));
    }

    [Fact]
    public async Task An_MLflow_server_that_fails_does_not_fail_the_fit_and_is_logged_as_a_warning()
    {
        server.FailEverythingWith = 500;
        var printed = new ConcurrentQueue<string>();
        using var experiment = new Experiment("mlflow-down", Path.Combine(mnist.Directory, "experiments"));
        FitResult result;
        var started = DateTime.UtcNow;
        await using (var mlflow = MlflowExporter.Attach(experiment, Options with { Retries = 2 }, printed.Enqueue))
        {
            result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));
            await mlflow.FlushAsync();
        }

        Assert.False(result.Cancelled);
        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(60));
        var log = File.ReadAllText(Path.Combine(experiment.Path, "experiment.log"));
        Assert.Contains("warning: mlflow: setting up the MLflow experiment failed: experiments/get-by-name: HTTP 500 INTERNAL_ERROR: the tracking server is down (after 3 attempts)", log);
        Assert.Contains(printed, l => l.StartsWith("warning: mlflow:", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(experiment.Path, "metrics", "run-1.minibatches.csv"))); // the files are unaffected
    }
}
