using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec.Configs;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>
/// Population Based Training in a fit through the ExperimentActor: at each point the worst runs are stopped and
/// replaced by warm clones of the best with mutated knobs, each clone an automatic operation of the IC log; the same
/// fit twice makes the same decisions and ends with the same metrics.
/// </summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class PbtScenarioTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private readonly TinyData data = new();
    private readonly string checkpoints = Path.Combine(Path.GetTempPath(), $"rf-pbt-{Guid.NewGuid():N}");

    public PbtScenarioTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        data.Dispose();
        if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
        Shutdown();
    }

    private static Cfg Config(double lr) => new(new Dictionary<string, object?>
    {
        ["hidden"] = 8L,
        ["epochs"] = 3L,
        ["batch_size"] = 16L,
        ["optimizer"] = new Dictionary<string, object?> { ["name"] = "SGD", ["args"] = new Dictionary<string, object?> { ["lr"] = lr } },
    });

    private static readonly PbtSettings Pbt = new("loss", MetricGoal.Min)
    {
        Quantile = 0.25,
        Seed = 7,
        Mutations = new Dictionary<string, PbtMutation> { ["optimizer.args.lr"] = new(PbtMutationKind.Factors, [0.5, 2.0]) },
    };

    private async Task<(FitCompleted Result, IReadOnlyList<ControlRecord> Log)> Fit(string name)
    {
        var experiment = Sys.ActorOf(ExperimentActor.Props(name,
            _ => new TrainingServices.Storage(new LocalCheckpointStore(Path.Combine(checkpoints, name))), () => 0));
        var start = new StartFit(SpecReference.FromType(typeof(TinySpec)), data.Handle.ToJson(data.Directory), data.Directory,
            new RuntimeSettings(Chunks: 2, Devices: "cpu"), [Config(0.5), Config(0.3), Config(0.0), Config(0.0)], Pbt: Pbt);
        var result = Assert.IsType<FitCompleted>(await experiment.Ask(start, Patience));
        var log = await experiment.Ask<IReadOnlyList<ControlRecord>>(new GetControlLog(), Patience);
        return (result, log);
    }

    // One device: the same fit twice is then bit-identical. On two CPU devices training concurrently, a clone's last
    // digits were seen to differ between two fits now and then (about 1e-7 of the loss): an open question.
    [Fact]
    public async Task The_worst_runs_are_replaced_by_warm_clones_of_the_best_at_each_epoch_and_the_same_fit_decides_the_same()
    {
        var (result, log) = await Fit($"pbt-a-{Guid.NewGuid():N}");

        var byId = result.Runs.ToDictionary(r => r.RunId);
        // 4 runs, quantile 0.25: one replaced at epoch 1 and one at epoch 2 (epoch 3 is the end), first a run that learns nothing
        var replaced = result.Runs.Where(r => r.EndedBy == PbtSettings.EndedBy).OrderBy(r => r.RunId).ToList();
        Assert.Equal(2, replaced.Count);
        Assert.All(replaced, r => Assert.Equal(RunStatus.Stopped, r.Status));
        // the two that learn nothing tie: the higher id ranks worse, so run 4 goes first, then run 3
        Assert.Equal([(3, 2), (4, 1)], replaced.Select(r => (r.RunId, r.EpochsDone)));
        Assert.Equal([5, 6], result.Runs.Select(r => r.RunId).Where(id => id > 4));

        Assert.Equal(2, log.Count);
        Assert.All(log, record =>
        {
            Assert.Equal(("clone-warm", ControlStatus.Applied), (record.Op.Name, record.Status));
            Assert.StartsWith("pbt at epoch ", record.Op.Origin);
            Assert.Contains($"replaced by a warm clone of run {record.Op.RunId}", record.Op.Origin);
            var lr = System.Text.Json.JsonSerializer.Deserialize<double>(record.Op.Changes!["optimizer.args.lr"]);
            var parentLr = byId[record.Op.RunId].Config.Optimizer.Args["lr"] is double d ? d : 0;
            Assert.Contains(lr, new[] { parentLr * 0.5, parentLr * 2.0 });
            Assert.Equal(lr, byId[record.NewRunId!.Value].Config.Optimizer.Args["lr"]);
        });
        // a clone starts where its parent stood: it trains the epochs after the point only, and completes
        var clone = byId[5];
        Assert.Equal((RunStatus.Completed, 3), (clone.Status, clone.EpochsDone));
        Assert.Equal(byId[log[0].Op.RunId].ValidationHistory[0]["loss"], clone.ValidationHistory[0]["loss"]);

        var (again, againLog) = await Fit($"pbt-b-{Guid.NewGuid():N}");
        Assert.Equal(log.Select(r => (r.Op.RunId, r.Op.Origin, r.Op.Arguments, r.NewRunId)), againLog.Select(r => (r.Op.RunId, r.Op.Origin, r.Op.Arguments, r.NewRunId)));
        Assert.Equal(result.Runs.Select(r => (r.RunId, r.Status, r.EndedBy, r.ValidationHistory.Last()["loss"])),
            again.Runs.Select(r => (r.RunId, r.Status, r.EndedBy, r.ValidationHistory.Last()["loss"])));
    }
}
