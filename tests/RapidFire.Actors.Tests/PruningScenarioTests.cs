using Akka.Actor;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec.Configs;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>Pruning rules running in a fit: the runs they stop end as Stopped, named by the rule, and the others go on.</summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class PruningScenarioTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly TinyData data = new();
    private readonly List<TrainingServices> services = [];

    public PruningScenarioTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        foreach (var s in services) s.Dispose();
        data.Dispose();
        Shutdown();
    }

    private static Cfg Config(double lr) => new(new Dictionary<string, object?>
    {
        ["hidden"] = 8L,
        ["epochs"] = 2L,
        ["batch_size"] = 16L,
        ["optimizer"] = new Dictionary<string, object?> { ["name"] = "SGD", ["args"] = new Dictionary<string, object?> { ["lr"] = lr } },
        ["named_metrics"] = new[] { "top1_accuracy" },
    });

    private async Task<(FitCompleted Result, List<RunPruned> Pruned)> Fit(PruningRule rule, params Cfg[] configs)
    {
        var probe = CreateTestProbe();
        Sys.EventStream.Subscribe(probe, typeof(RunPruned));
        var s = new TrainingServices(() => new TinySpec(), data.Handle, new RuntimeSettings(Chunks: 2, Devices: "cpu") with { JournalIdPrefix = $"{Guid.NewGuid():N}/" });
        services.Add(s);
        var fit = Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse("cpu", () => 0)));
        var result = await fit.Ask<FitCompleted>(new RunFit(configs.Select((c, i) => new RunDefinition(i + 1, c)).ToList(), Pruning: rule), TimeSpan.FromSeconds(60));
        var pruned = new List<RunPruned>();
        while (probe.HasMessages) pruned.Add(probe.ExpectMsg<RunPruned>());
        return (result, pruned);
    }

    [Fact]
    public async Task Asha_over_chunks_stops_the_runs_that_learn_nothing_and_lets_a_learning_one_finish()
    {
        var rule = new PruningRule(PruningKind.AsyncSuccessiveHalving, "loss", MetricGoal.Min) { Resource = PruningResource.Chunks, Eta = 2 };
        var (result, pruned) = await Fit(rule, Config(0.5), Config(0.5), Config(0.0), Config(0.0));

        var byId = result.Runs.ToDictionary(r => r.RunId);
        Assert.Equal((RunStatus.Stopped, "asha"), (byId[3].Status, byId[3].EndedBy));
        Assert.Equal((RunStatus.Stopped, "asha"), (byId[4].Status, byId[4].EndedBy));
        Assert.Contains(result.Runs, r => r.Status == RunStatus.Completed);
        Assert.All(result.Runs.Where(r => r.Status == RunStatus.Stopped), r => Assert.Contains(pruned, p => p.RunId == r.RunId && p.Reason.StartsWith("asha", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Median_stopping_over_epochs_leaves_runs_alone_until_enough_others_reached_the_same_epoch()
    {
        var rule = new PruningRule(PruningKind.MedianStopping, "loss", MetricGoal.Min) { MinSamples = 3 };
        var (result, pruned) = await Fit(rule, Config(0.5), Config(0.5), Config(0.0));

        // Three runs: no run ever has three others to compare with, so none is stopped.
        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
        Assert.Empty(pruned);
    }
}
