using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using TorchSharp;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Training.GpuProtocol;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>
/// IC operations on a running fit, with the test in the experiment's place: it asks the fit to check an operation,
/// then to carry it out, and hears how it went.
/// </summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class ControlScenarioTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TinyData data = new();
    private readonly string checkpoints = Path.Combine(Path.GetTempPath(), $"rf-control-{Guid.NewGuid():N}");
    private readonly List<TrainingServices> services = [];
    private int nextOp;

    public ControlScenarioTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        foreach (var s in services) s.Dispose();
        data.Dispose();
        if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
        Shutdown();
    }

    private static Cfg Config(params (string Key, object Value)[] knobs) => new(
        knobs.Select(k => new KeyValuePair<string, object?>(k.Key, k.Value)).Concat([
            new("epochs", knobs.Any(k => k.Key == "epochs") ? null : 2L),
            new("batch_size", 16L),
            new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } }),
            new("named_metrics", new[] { "top1_accuracy" }),
        ]).Where(kv => kv.Value is not null || kv.Key != "epochs"));

    private (IActorRef Fit, TrainingServices Services) Fit(RuntimeSettings settings)
    {
        var store = new LocalCheckpointStore(Path.Combine(checkpoints, Guid.NewGuid().ToString("N")));
        var s = new TrainingServices(() => new TinySpec(), data.Handle, settings with { JournalIdPrefix = $"{Guid.NewGuid():N}/", KeepCheckpoints = 100 },
            new TrainingServices.Storage(store));
        services.Add(s);
        return (Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse(settings.Devices, () => 0))), s);
    }

    private static Task<FitCompleted> Start(IActorRef fit, params Cfg[] configs) =>
        fit.Ask<FitCompleted>(new RunFit(configs.Select((c, i) => new RunDefinition(i + 1, c)).ToList()), Patience);

    /// <summary>Checks an operation; when accepted, has it carried out and returns the first word on it.</summary>
    private ControlOutcome Operate(IActorRef fit, ControlOp op, int newRunId = 0)
    {
        var opId = ++nextOp;
        fit.Tell(new CheckControl(opId, op, newRunId));
        var verdict = ExpectMsg<ControlChecked>(Patience);
        if (verdict.Refusal is { } refusal) return new ControlOutcome(opId, op, ControlStatus.Rejected, refusal);
        fit.Tell(new ApplyControl(opId, op, verdict.NewRun));
        return ExpectMsg<ControlProgress>(Patience).Outcome;
    }

    private ControlOutcome Applied(ControlOutcome outcome)
    {
        while (outcome.Status == ControlStatus.Pending) outcome = ExpectMsg<ControlProgress>(Patience).Outcome;
        Assert.Equal(ControlStatus.Applied, outcome.Status);
        return outcome;
    }

    private async Task TrainingOf(IActorRef fit, int runId) => await AwaitAssertAsync(async () =>
    {
        var status = await fit.Ask<FitStatus>(new GetStatus(), TimeSpan.FromSeconds(1));
        Assert.Contains(status.Busy.Values, t => t.RunId == runId);
    }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(5));

    private static void AssertSameWeights(Dictionary<string, torch.Tensor> expected, Dictionary<string, torch.Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
            Assert.True(tensor.allclose(actual[name], rtol: 0, atol: 0), $"parameter {name} differs");
    }

    [Theory]
    [InlineData(3600.0, "e0000-c0002 e0001-c0002")]                                                    // epoch ends only
    [InlineData(1e-9, "e0000-c0000 e0000-c0001 e0000-c0002 e0001-c0000 e0001-c0001 e0001-c0002")]  // every chunk is an interval on
    public async Task The_time_save_strategy_checkpoints_every_epoch_end_and_the_first_chunk_an_interval_after_the_last_checkpoint(
        double interval, string expected)
    {
        var journaled = CreateTestProbe();
        Sys.EventStream.Subscribe(journaled.Ref, typeof(RunJournaled));
        var (fit, _) = Fit(new RuntimeSettings(Chunks: 3, Devices: "cpu", SaveStrategy: "time", CheckpointInterval: interval));
        var result = await Start(fit, Config(("hidden", 8L)));

        Assert.Equal(RunStatus.Completed, result.Runs[0].Status);
        var written = journaled.ReceiveWhile(TimeSpan.FromMilliseconds(500), m => m)
            .Select(m => m is RunJournaled { Event: ChunkCompleted { Checkpoint: { } c } } ? c : null).OfType<RapidFire.Actors.Checkpoints.CheckpointRef>();
        Assert.Equal(expected, string.Join(" ", written.Select(c => $"e{c.Epoch:0000}-c{c.Chunk:0000}")));
    }

    [Fact]
    public async Task A_stop_waits_for_the_chunk_boundary_and_a_resume_ends_bit_identical_to_an_uninterrupted_run()
    {
        // Its training minibatches wait on a gate, so that the stop, sent once its chunk is seen training, reaches the
        // fit before the chunk ends whatever the machine's load (sleeps of 40 and 150 ms were each once too short on CI).
        var gate = TinySpec.Gate("stop-at-boundary");
        var target = Config(("hidden", 12L), ("dropout", 0.3), ("gate", "stop-at-boundary"));
        var settings = new RuntimeSettings(Chunks: 3, Devices: "cpu");
        var (aloneFit, alone) = Fit(settings);
        var aloneResult = await Start(aloneFit, target);

        var (fit, s) = Fit(settings);
        gate.Reset();
        var done = Start(fit, target, Config(("hidden", 6L), ("epochs", 3L), ("sleep_ms", 10L)));
        await TrainingOf(fit, 1);
        var stop = Operate(fit, ControlOp.Stop(1));
        gate.Set();
        Assert.Equal(ControlStatus.Pending, stop.Status);
        Assert.Contains("next chunk boundary", stop.Message);
        var stopped = Applied(stop);
        Assert.Contains("run 1 stopped after", stopped.Message);
        var status = await fit.Ask<FitStatus>(new GetStatus(), Patience);
        var run1 = status.Runs.Single(r => r.RunId == 1);
        Assert.Equal((RunStatus.Stopped, EndReason.User), (run1.Status, run1.EndedBy));
        Assert.Equal(RunStatus.Ongoing, status.Runs.Single(r => r.RunId == 2).Status);

        var resumed = Applied(Operate(fit, ControlOp.Resume(1)));
        Assert.Contains("resumed at", resumed.Message);
        var result = await done;
        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
        Assert.Equal(aloneResult.Runs[0].ChunkMetrics.Select(m => m["loss"]), result.Runs[0].ChunkMetrics.Select(m => m["loss"]));
        AssertSameWeights(alone.Models.CopyWeights(1)!, s.Models.CopyWeights(1)!);
    }

    [Fact]
    public async Task A_warm_clone_starts_from_the_parents_state_at_the_chunk_after_its_last_finished_one_with_its_new_learning_rate()
    {
        // A checkpoint per chunk, to compare the clone's first checkpoint with the parent's at the same chunk.
        var (fit, s) = Fit(new RuntimeSettings(Chunks: 4, Devices: "cpu", SaveStrategy: "chunk"));
        var done = Start(fit, Config(("hidden", 8L), ("sleep_ms", 10L)), Config(("hidden", 6L), ("sleep_ms", 10L)));
        await TrainingOf(fit, 1);
        var clone = Applied(Operate(fit, ControlOp.CloneOf(1, new Dictionary<string, string> { ["optimizer.lr"] = "0.002" }, warm: true), newRunId: 3));
        Assert.Equal(3, clone.NewRunId);
        Assert.Contains("run 3 created from run 1, warm", clone.Message);

        // The clone's first checkpoint is the parent's state after the same chunk, byte for byte, and it has no earlier one.
        var store = s.Checkpoints!;
        var first = store.List(3)[0];
        var trained = first.Epoch * 4 + first.Chunk + 1;
        Assert.Contains($"state after {trained} chunks", clone.Message);
        Assert.Equal(store.Load(new CheckpointRef(1, first.Epoch, first.Chunk)).Payload.ToArray(), store.Load(first).Payload.ToArray());

        var result = await done;
        // The clone took its warm start, and its run wrote every captured checkpoint.
        Assert.Equal((0, 0), (s.WarmStarts.Count, s.PendingCheckpoints.Count));
        var parent = result.Runs.Single(r => r.RunId == 1);
        var child = result.Runs.Single(r => r.RunId == 3);
        Assert.Equal(RunStatus.Completed, child.Status);
        Assert.Equal(0.002, child.Config.Optimizer.Args["lr"]);
        Assert.Equal(8L, child.Config["hidden"]);
        // It took the parent's history up to there, then trained every chunk after it, at its own learning rate.
        Assert.Equal(parent.ChunkMetrics.Count, child.ChunkMetrics.Count);
        Assert.Equal(parent.ChunkMetrics.Take(trained).Select(m => m["loss"]), child.ChunkMetrics.Take(trained).Select(m => m["loss"]));
        Assert.NotEqual(parent.ChunkMetrics[^1]["loss"], child.ChunkMetrics[^1]["loss"]);
    }

    [Fact]
    public async Task Delete_then_clone_of_the_same_parent_and_clone_of_a_stopped_run()
    {
        var (fit, _) = Fit(new RuntimeSettings(Chunks: 4, Devices: "cpu"));
        var done = Start(fit, Config(("hidden", 8L), ("sleep_ms", 10L), ("epochs", 3L)), Config(("hidden", 6L), ("sleep_ms", 10L)));
        await TrainingOf(fit, 1);

        var first = Applied(Operate(fit, ControlOp.CloneOf(1, new Dictionary<string, string> { ["hidden"] = "4" }), newRunId: 3));
        Assert.Contains("trains from scratch", first.Message);
        Assert.Contains("run 3 deleted", Applied(Operate(fit, ControlOp.Delete(3))).Message);
        Applied(Operate(fit, ControlOp.CloneOf(1, new Dictionary<string, string> { ["hidden"] = "5" }), newRunId: 4));
        var refused = Operate(fit, ControlOp.CloneOf(3, new Dictionary<string, string>()), newRunId: 5);
        Assert.Equal((ControlStatus.Rejected, "run 3 was deleted: clone applies only to runs that are not deleted"), (refused.Status, refused.Message));

        Applied(Operate(fit, ControlOp.Stop(2)));
        Applied(Operate(fit, ControlOp.CloneOf(2, new Dictionary<string, string> { ["epochs"] = "3" }, warm: true), newRunId: 5));

        var result = await done;
        var byId = result.Runs.ToDictionary(r => r.RunId);
        Assert.Equal((RunStatus.Deleted, EndReason.User), (byId[3].Status, byId[3].EndedBy));
        Assert.Equal((RunStatus.Stopped, EndReason.User), (byId[2].Status, byId[2].EndedBy));
        Assert.Equal(RunStatus.Completed, byId[1].Status);
        Assert.Equal(RunStatus.Completed, byId[4].Status);
        Assert.Equal((RunStatus.Completed, 3), (byId[5].Status, byId[5].EpochsDone));
    }

    [Fact]
    public async Task Operations_that_do_not_apply_are_rejected_with_their_reason()
    {
        // Run 2's training minibatches wait on a gate the test closes once run 1 has completed: its stop then stays
        // pending, inside its chunk, while the test checks the refusals of a pending stop.
        const string name = "rejected-operations";
        var gate = TinySpec.Gate(name);
        gate.Set();
        var (fit, _) = Fit(new RuntimeSettings(Chunks: 2, Devices: "cpu"));
        var done = Start(fit, Config(("epochs", 1L)), Config(("hidden", 6L), ("sleep_ms", 20L), ("epochs", 3L), ("gate", name)));
        await AwaitAssertAsync(async () =>
        {
            var status = await fit.Ask<FitStatus>(new GetStatus(), TimeSpan.FromSeconds(1));
            Assert.Equal(RunStatus.Completed, status.Runs.Single(r => r.RunId == 1).Status);
        }, Patience, TimeSpan.FromMilliseconds(10));

        gate.Reset();
        await AwaitConditionAsync(() => Task.FromResult(TinySpec.WaitingAt(name) > 0), Patience, TimeSpan.FromMilliseconds(5));

        string Refusal(ControlOp op) => Operate(fit, op, newRunId: 9) is { Status: ControlStatus.Rejected } outcome ? outcome.Message : "accepted";
        Assert.Equal("there is no run 7 in this fit (its runs are 1, 2)", Refusal(ControlOp.Stop(7)));
        Assert.Equal("run 1 has completed (epochs): stop applies only to runs that have not completed", Refusal(ControlOp.Stop(1)));
        Assert.Equal("run 1 has completed (epochs): clone applies only to runs that have not completed",
            Refusal(ControlOp.CloneOf(1, new Dictionary<string, string>())));
        Assert.Equal("run 2 is ongoing, not stopped: only a stopped run can be resumed", Refusal(ControlOp.Resume(2)));
        Assert.StartsWith("the clone's knobs are not valid: hiddn: the run has no knob 'hiddn'",
            Refusal(ControlOp.CloneOf(2, new Dictionary<string, string> { ["hiddn"] = "3" })));
        Assert.Contains("batch_size (16 → 32) cuts the epoch into other minibatches",
            Refusal(ControlOp.CloneOf(2, new Dictionary<string, string> { ["batch_size"] = "32" }, warm: true)));
        var architecture = Refusal(ControlOp.CloneOf(2, new Dictionary<string, string> { ["hidden"] = "12" }, warm: true));
        Assert.StartsWith("changing hidden changes the model's architecture: '0.weight' is [6, 4] Float32 in run 2 and [12, 4] Float32 with the clone's knobs", architecture);
        Assert.EndsWith("clone without a warm start", architecture);

        var stop = Operate(fit, ControlOp.Stop(2));
        Assert.Equal(ControlStatus.Pending, stop.Status);
        Assert.StartsWith("run 2 is already stopped (its stop waits for its chunk to end)", Refusal(ControlOp.Stop(2)));
        gate.Set();
        Applied(stop);
        await done;
    }
}
