using RapidFire.Actors.Runs;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host.Tests;

/// <summary>Successive halving on real digits: a grid of 4 runs, eta 2, rungs after epochs 1 and 2 of 3.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class PruningFitTests : IDisposable
{
    private readonly SmallMnist mnist = new();

    public void Dispose() => mnist.Dispose();

    [Fact]
    public async Task Successive_halving_on_mnist_keeps_one_of_four_runs_and_stops_the_others_as_sha()
    {
        var configs = Path.Combine(mnist.Directory, "sha.json");
        File.WriteAllText(configs, """
            { "user_knobs": { "model_type": "mlp", "hidden": [8, 32] },
              "train": { "epochs": 3, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": [0.0003, 0.003] } } },
              "named_metrics": ["top1_accuracy"],
              "pruning": { "rule": "sha", "metric": "top1_accuracy", "mode": "max", "eta": 2, "min_resource": 1 } }
            """);
        using var experiment = new Experiment("sha", Path.Combine(mnist.Directory, "experiments"));
        var pruned = new List<string>();
        experiment.Progress += e => { if (e is RunPrunedBy p) lock (pruned) pruned.Add(p.Reason); };

        var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
            ConfigGroup.Load(configs), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));

        Assert.Equal(4, result.Runs.Count);
        var survivor = Assert.Single(result.Runs, r => r.Status == RunStatus.Completed);
        Assert.Equal(3, survivor.EpochsDone);
        var stopped = result.Runs.Where(r => r.Status == RunStatus.Stopped).ToList();
        Assert.Equal(3, stopped.Count);
        Assert.All(stopped, r => Assert.Equal("sha", r.EndedBy));
        Assert.Equal([1, 1, 2], stopped.Select(r => r.EpochsDone).Order());
        // The survivor was the best at each rung it passed.
        Assert.All(result.Runs.Where(r => r.EpochsDone >= 1), r =>
            Assert.True(survivor.ValidationHistory[0]["top1_accuracy"] >= r.ValidationHistory[0]["top1_accuracy"]));
        Assert.Equal(3, pruned.Count);
        Assert.All(pruned, reason => Assert.StartsWith("sha rung", reason));
        Assert.Contains("pruned: sha rung", File.ReadAllText(Path.Combine(experiment.Path, "experiment.log")));
    }
}
