using Akka.Actor;
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

[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class FitScenarioTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TinyData data = new();
    private readonly List<TrainingServices> services = [];

    public FitScenarioTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        foreach (var s in services) s.Dispose();
        data.Dispose();
        Shutdown();
    }

    private static Cfg Config(params (string Key, object Value)[] knobs) => new(
        knobs.Select(k => new KeyValuePair<string, object?>(k.Key, k.Value)).Concat([
            new("epochs", knobs.Any(k => k.Key == "epochs") ? null : 2L),
            new("batch_size", 16L),
            new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } }),
            new("named_metrics", new[] { "top1_accuracy" }),
        ]).Where(kv => kv.Value is not null || kv.Key != "epochs"));

    private (IActorRef Experiment, TrainingServices Services) Experiment(RuntimeSettings settings, Spec.Data.DataHandle? handle = null)
    {
        // Every fit journals in the test system's in-memory journal: its own prefix keeps its runs apart.
        var s = new TrainingServices(() => new TinySpec(), handle ?? data.Handle, settings with { JournalIdPrefix = $"{Guid.NewGuid():N}/" });
        services.Add(s);
        return (Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse(settings.Devices, () => 0))), s);
    }

    private async Task<(FitCompleted Result, TrainingServices Services)> Fit(RuntimeSettings settings, params Cfg[] configs)
    {
        var (experiment, s) = Experiment(settings);
        var runs = configs.Select((c, i) => new RunDefinition(i + 1, c)).ToList();
        return (await experiment.Ask<FitCompleted>(new RunFit(runs), Patience), s);
    }

    private static void AssertSameWeights(Dictionary<string, torch.Tensor> expected, Dictionary<string, torch.Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
            Assert.True(tensor.allclose(actual[name], rtol: 0, atol: 0), $"parameter {name} differs");
    }

    [Fact]
    public async Task Every_run_trains_to_its_epochs_with_train_and_validation_metrics()
    {
        var (result, _) = await Fit(new RuntimeSettings(Chunks: 3), Config(("hidden", 8L)), Config(("hidden", 16L)));
        Assert.False(result.Cancelled);
        Assert.All(result.Runs, run =>
        {
            Assert.Equal(RunStatus.Completed, run.Status);
            Assert.Equal(EndReason.Epochs, run.EndedBy);
            Assert.Equal(2, run.EpochsDone);
            Assert.Equal(2, run.TrainHistory.Count);
            Assert.Equal(2, run.ValidationHistory.Count);
            Assert.Equal(["loss", "top1_accuracy", "accuracy"], run.ValidationHistory[^1].Keys);
            Assert.Equal(run.ValidationHistory[^1]["top1_accuracy"], run.ValidationHistory[^1]["accuracy"], 9);
        });
        Assert.True(result.Runs[1].ValidationHistory[^1]["top1_accuracy"] > 0.6);
    }

    [Fact]
    public async Task On_one_device_runs_take_turns_chunk_by_chunk()
    {
        var probe = CreateTestProbe();
        Sys.EventStream.Subscribe(probe, typeof(TaskFinished));
        await Fit(new RuntimeSettings(Chunks: 2), Config(("epochs", 1L)), Config(("epochs", 1L)), Config(("epochs", 1L)));
        var order = Enumerable.Range(0, 9).Select(_ => probe.ExpectMsg<TaskFinished>().Task.ToString()).ToList();
        Assert.Equal([
            "run 1 epoch 1 chunk 1", "run 2 epoch 1 chunk 1", "run 3 epoch 1 chunk 1",
            "run 1 epoch 1 chunk 2", "run 2 epoch 1 chunk 2", "run 3 epoch 1 chunk 2",
            "run 1 epoch 1 validation", "run 2 epoch 1 validation", "run 3 epoch 1 validation",
        ], order);
    }

    [Theory]
    [InlineData("cpu", 0.3)]
    [InlineData("cpu:2", 0.0)]
    public async Task A_run_interleaved_with_three_others_ends_bit_identical_to_the_run_trained_alone(string devices, double dropout)
    {
        var target = Config(("hidden", 12L), ("dropout", dropout));
        var settings = new RuntimeSettings(Chunks: 3, Devices: devices);
        var (alone, aloneServices) = await Fit(settings, target);
        var (together, togetherServices) = await Fit(settings,
            Config(("hidden", 4L)), target, Config(("hidden", 20L), ("dropout", dropout)), Config(("hidden", 6L)));

        Assert.All(together.Runs, run => Assert.Equal(RunStatus.Completed, run.Status));
        AssertSameWeights(aloneServices.Models.CopyWeights(1)!, togetherServices.Models.CopyWeights(2)!);
        Assert.Equal(alone.Runs[0].ValidationHistory[^1]["loss"], together.Runs[1].ValidationHistory[^1]["loss"]);
    }

    [Fact]
    public async Task HasConverged_stops_a_run_early_and_epochs_bound_the_others()
    {
        var (result, _) = await Fit(new RuntimeSettings(Chunks: 2), Config(("epochs", 5L), ("converge_after", 2L)), Config(("epochs", 3L)));
        Assert.Equal((RunStatus.Completed, EndReason.Converged, 2), (result.Runs[0].Status, result.Runs[0].EndedBy, result.Runs[0].EpochsDone));
        Assert.Equal((RunStatus.Completed, EndReason.Epochs, 3), (result.Runs[1].Status, result.Runs[1].EndedBy, result.Runs[1].EpochsDone));
    }

    [Fact]
    public async Task Failing_runs_fail_alone_with_where_it_happened_and_leave_the_others_untouched()
    {
        var healthy = Config(("hidden", 10L));
        var settings = new RuntimeSettings(Chunks: 2, Devices: "cpu");
        var (alone, aloneServices) = await Fit(settings, healthy);
        var (result, s) = await Fit(settings, Config(("fail", "rowprep:40")), healthy, Config(("fail", "nan")));

        var rowPrep = result.Runs[0];
        Assert.Equal(RunStatus.Failed, rowPrep.Status);
        Assert.Equal("RowPrep", rowPrep.Failure!.Method);
        Assert.Equal(40, rowPrep.Failure.RowId);
        Assert.Contains("cannot prepare row 40", rowPrep.Failure.Message);
        Assert.Equal(1, rowPrep.Failure.Epoch);

        var nan = result.Runs[2];
        Assert.Equal(RunStatus.Failed, nan.Status);
        Assert.Equal("loss (train, epoch 1, chunk 1): the loss is NaN", nan.Failure!.ToString());

        Assert.Equal(RunStatus.Completed, result.Runs[1].Status);
        AssertSameWeights(aloneServices.Models.CopyWeights(1)!, s.Models.CopyWeights(2)!);
        Assert.Null(s.Models.CopyWeights(3)); // a failed run's state is released
    }

    [Fact]
    public async Task A_cancel_mid_fit_stops_the_runs_promptly_and_answers_the_fit()
    {
        var probe = CreateTestProbe();
        Sys.EventStream.Subscribe(probe, typeof(TaskFinished));
        var (experiment, _) = Experiment(new RuntimeSettings(Chunks: 4));
        var slow = Config(("epochs", 5L), ("sleep_ms", 30L));
        var fit = experiment.Ask<FitCompleted>(new RunFit([new RunDefinition(1, slow), new RunDefinition(2, slow)]), Patience);
        await probe.ExpectMsgAsync<TaskFinished>(TimeSpan.FromSeconds(20));
        experiment.Tell(new CancelFit());
        var result = await fit.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(result.Cancelled);
        Assert.All(result.Runs, run => Assert.Equal((RunStatus.Stopped, EndReason.Cancelled), (run.Status, run.EndedBy)));
        Assert.All(result.Runs, run => Assert.True(run.EpochsDone < 5));
    }

    [Fact]
    public async Task The_experiment_and_the_device_answer_queries_while_a_chunk_trains()
    {
        var (experiment, _) = Experiment(new RuntimeSettings(Chunks: 1));
        var fit = experiment.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(("epochs", 1L), ("sleep_ms", 150L)))]), Patience);
        await AwaitAssertAsync(async () =>
        {
            var status = await experiment.Ask<FitStatus>(new GetStatus(), TimeSpan.FromMilliseconds(500));
            Assert.NotEmpty(status.Busy);
        }, TimeSpan.FromSeconds(10));
        var device = await Sys.ActorSelection(experiment.Path / "device-cpu").ResolveOne(TimeSpan.FromSeconds(1));
        var deviceStatus = await device.Ask<DeviceStatus>(new GetDeviceStatus(), TimeSpan.FromSeconds(1));
        Assert.Equal(Scheduling.RunTask.Train(1, 0, 0), deviceStatus.Task);
        Assert.InRange(deviceStatus.MinibatchesDone, 0, deviceStatus.MinibatchesTotal - 1);
        experiment.Tell(new CancelFit());
        await fit.WaitAsync(Patience);
    }

    [Fact]
    public async Task Prepared_minibatches_never_exceed_the_prefetch_window()
    {
        var (result, s) = await Fit(new RuntimeSettings(Chunks: 1, Prefetch: 2, Loaders: 2), Config(("epochs", 1L), ("sleep_ms", 15L)));
        Assert.Equal(RunStatus.Completed, result.Runs[0].Status);
        Assert.InRange(s.Exchange.PeakWaiting("cpu"), 1, 2);
        Assert.Equal(0, s.Exchange.Count);
    }
}
