using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>
/// IC operations through the ExperimentActor, journaled in the test system's journal: the IC log keeps every one,
/// refused ones included, and operations accepted but not carried out when the experiment died are carried out by the
/// resumed fit.
/// </summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class ExperimentControlTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TinyData data = new();
    private readonly string checkpoints = Path.Combine(Path.GetTempPath(), $"rf-exp-control-{Guid.NewGuid():N}");
    private readonly string name = $"exp-{Guid.NewGuid():N}";

    public ExperimentControlTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        data.Dispose();
        if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
        Shutdown();
    }

    private static Cfg Config(long hidden, long sleepMs) => new(new Dictionary<string, object?>
    {
        ["hidden"] = hidden,
        ["sleep_ms"] = sleepMs,
        ["epochs"] = 2L,
        ["batch_size"] = 16L,
        ["optimizer"] = new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } },
        ["named_metrics"] = new[] { "top1_accuracy" },
    });

    private IActorRef Experiment() => Sys.ActorOf(ExperimentActor.Props(name,
        _ => new TrainingServices.Storage(new LocalCheckpointStore(checkpoints)), () => 0));

    private StartFit Start(params Cfg[] configs) => new(SpecReference.FromType(typeof(TinySpec)), data.Handle.ToJson(data.Directory), data.Directory,
        new RuntimeSettings(Chunks: 3, Devices: "cpu:2"), configs);

    private async Task BothTraining(IActorRef experiment) => await AwaitAssertAsync(async () =>
    {
        var status = await experiment.Ask<FitStatus>(new GetStatus(), TimeSpan.FromSeconds(1));
        Assert.Equal(2, status.Busy.Count);
    }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(5));

    private void Kill(IActorRef experiment)
    {
        Watch(experiment);
        experiment.Tell(PoisonPill.Instance);
        ExpectTerminated(experiment, Patience);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // its children (runs, devices) stop after it
    }

    [Fact]
    public async Task Operations_accepted_before_the_experiment_died_are_carried_out_by_the_resumed_fit()
    {
        var experiment = Experiment();
        _ = experiment.Ask(Start(Config(8, 150), Config(6, 150)), Patience);
        await AwaitAssertAsync(async () =>
        {
            var status = await experiment.Ask<FitStatus>(new GetStatus(), TimeSpan.FromSeconds(1));
            Assert.All(status.Runs, r => Assert.True(r.ChunksTrained >= 1));
            Assert.Equal(2, status.Busy.Count);
        }, Patience, TimeSpan.FromMilliseconds(5));

        // Both runs are training a chunk (two minibatches of 150 ms): the operations wait for its end.
        var stop = await experiment.Ask<ControlOutcome>(new RequestControl(ControlOp.Stop(1)), Patience);
        var clone = await experiment.Ask<ControlOutcome>(new RequestControl(
            ControlOp.CloneOf(2, new Dictionary<string, string> { ["optimizer.lr"] = "0.002" }, warm: true)), Patience);
        var refused = await experiment.Ask<ControlOutcome>(new RequestControl(ControlOp.Resume(2)), Patience);
        Kill(experiment);
        Assert.Equal((ControlStatus.Pending, ControlStatus.Pending, ControlStatus.Rejected), (stop.Status, clone.Status, refused.Status));
        Assert.Equal(3, clone.NewRunId);

        experiment = Experiment();
        var log = await experiment.Ask<IReadOnlyList<ControlRecord>>(new GetControlLog(), Patience);
        Assert.Equal([ControlStatus.Pending, ControlStatus.Pending, ControlStatus.Rejected], log.Select(c => c.Status));
        var result = Assert.IsType<FitCompleted>(await experiment.Ask(new ResumeFit(), Patience));

        var byId = result.Runs.ToDictionary(r => r.RunId);
        Assert.Equal((RunStatus.Stopped, EndReason.User), (byId[1].Status, byId[1].EndedBy));
        Assert.Equal(RunStatus.Completed, byId[2].Status);
        Assert.Equal(RunStatus.Completed, byId[3].Status);
        Assert.Equal(0.002, byId[3].Config.Optimizer.Args["lr"]);
        log = await experiment.Ask<IReadOnlyList<ControlRecord>>(new GetControlLog(), Patience);
        Assert.Equal([(1, "stop", ControlStatus.Applied), (2, "clone-warm", ControlStatus.Applied), (3, "resume", ControlStatus.Rejected)],
            log.Select(c => (c.OpId, c.Op.Name, c.Status)));
        Assert.Equal("run 2 is ongoing, not stopped: only a stopped run can be resumed", log[2].Outcome);
        var fit = (await experiment.Ask<ExperimentState>(new GetExperiment(), Patience)).Fits.Single();
        Assert.Equal([1, 2, 3], fit.Runs.Select(r => r.RunId));
        Assert.Equal((2, true), (fit.Runs[2].ClonedFrom, fit.Runs[2].Warm));
    }
}
