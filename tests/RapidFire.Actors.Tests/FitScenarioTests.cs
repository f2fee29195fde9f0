using Akka.Actor;
using RapidFire.Actors.Checkpoints;
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
    /// <summary>Where the fits that keep checkpoints keep them (each in a folder of its own).</summary>
    private readonly string checkpoints = Directory.CreateTempSubdirectory("rf-fit-").FullName;

    public FitScenarioTests() : base(RuntimeSettings.Reference) { }

    void IDisposable.Dispose()
    {
        foreach (var s in services) s.Dispose();
        data.Dispose();
        Directory.Delete(checkpoints, recursive: true);
        Shutdown();
    }

    private static Cfg Config(params (string Key, object Value)[] knobs) => new(
        knobs.Select(k => new KeyValuePair<string, object?>(k.Key, k.Value)).Concat([
            new("epochs", knobs.Any(k => k.Key == "epochs") ? null : 2L),
            new("batch_size", 16L),
            new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } }),
            new("named_metrics", new[] { "top1_accuracy" }),
        ]).Where(kv => kv.Value is not null || kv.Key != "epochs"));

    private (IActorRef Experiment, TrainingServices Services) Experiment(RuntimeSettings settings, Spec.Data.DataHandle? handle = null, string? checkpoints = null) =>
        Experiment(settings, handle, checkpoints is null ? null : new LocalCheckpointStore(Path.Combine(checkpoints, Guid.NewGuid().ToString("N"))));

    private (IActorRef Experiment, TrainingServices Services) Experiment(RuntimeSettings settings, Spec.Data.DataHandle? handle, ICheckpointStore? store)
    {
        // Every fit journals in the test system's in-memory journal: its own prefix keeps its runs apart.
        var s = new TrainingServices(() => new TinySpec(), handle ?? data.Handle, settings with { JournalIdPrefix = $"{Guid.NewGuid():N}/" },
            store is null ? null : new TrainingServices.Storage(store));
        services.Add(s);
        return (Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse(settings.Devices, () => 0))), s);
    }

    private Task<(FitCompleted Result, TrainingServices Services)> Fit(RuntimeSettings settings, params Cfg[] configs) =>
        Fit(settings, null, configs);

    private async Task<(FitCompleted Result, TrainingServices Services)> Fit(RuntimeSettings settings, string? checkpoints, params Cfg[] configs)
    {
        var (experiment, s) = Experiment(settings, checkpoints: checkpoints);
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
        // One device for the target, wherever it trains: alone on cpu:2 it would spread over both (see the data-parallel tests).
        var target = Config(("hidden", 12L), ("dropout", dropout), ("num_devices", 1L));
        var settings = new RuntimeSettings(Chunks: 3, Devices: devices);
        var (alone, aloneServices) = await Fit(settings, target);
        var (together, togetherServices) = await Fit(settings,
            Config(("hidden", 4L)), target, Config(("hidden", 20L), ("dropout", dropout)), Config(("hidden", 6L)));

        Assert.All(together.Runs, run => Assert.Equal(RunStatus.Completed, run.Status));
        AssertSameWeights(aloneServices.Models.CopyWeights(1)!, togetherServices.Models.CopyWeights(2)!);
        Assert.Equal(alone.Runs[0].ValidationHistory[^1]["loss"], together.Runs[1].ValidationHistory[^1]["loss"]);
    }

    [Fact]
    public async Task A_fit_with_the_prepared_example_cache_ends_bit_identical_to_the_same_fit_without_it()
    {
        Cfg[] configs = [Config(("hidden", 12L), ("dropout", 0.3)), Config(("hidden", 6L))];
        var (off, offServices) = await Fit(new RuntimeSettings(Chunks: 3, PrepCache: false), configs);
        var (on, onServices) = await Fit(new RuntimeSettings(Chunks: 3), configs);

        Assert.All(on.Runs, run => Assert.Equal(RunStatus.Completed, run.Status));
        for (var run = 1; run <= 2; run++)
            AssertSameWeights(offServices.Models.CopyWeights(run)!, onServices.Models.CopyWeights(run)!);
        Assert.Equal(off.Runs.Select(r => r.ValidationHistory[^1]["loss"]), on.Runs.Select(r => r.ValidationHistory[^1]["loss"]));
        // Both runs share the rows (TinySpec's RowPrep reads no knob they differ in): 96 train and 32 validation rows of 4 floats and a label.
        Assert.Equal((96 + 32) * (4 * 4 + 8), onServices.Prepared.Bytes);
        Assert.Equal(0, offServices.Prepared.Bytes);
    }

    private static double MaxDifference(Dictionary<string, torch.Tensor> expected, Dictionary<string, torch.Tensor> actual) =>
        expected.Max(kv => (kv.Value - actual[kv.Key]).abs().max().to_type(torch.ScalarType.Float64).item<double>());

    /// <summary>
    /// The tolerance of data parallelism on CPU: float32 sums taken in another order (each shard's mean loss, then the
    /// weighted average of the shards' gradients, instead of one mean over the minibatch) differ in the last bits, and
    /// twelve optimizer steps carry that on. Measured: at most 1.5e-7 on these weights; 1e-5 leaves room for other
    /// CPUs' vector widths, and still catches a wrong weighting (a plain mean of 8- and 7-row shards ends 2e-3 off with SGD, 3e-2 with Adam).
    /// </summary>
    private const double ShardTolerance = 1e-5;

    private static Cfg Optimized(Cfg cfg, long batch, string optimizer) => cfg.With("batch_size", batch)
        .With("optimizer", new Dictionary<string, object?> { ["name"] = optimizer, ["args"] = new Dictionary<string, object?> { ["lr"] = 0.05 } });

    [Theory]
    [InlineData(16L, "Adam")] // 8 + 8 rows per minibatch
    [InlineData(15L, "Adam")] // 8 + 7 rows, and a last minibatch of 6: 3 + 3
    [InlineData(15L, "SGD")]
    public async Task A_run_on_two_devices_ends_within_a_tight_tolerance_of_the_same_run_on_one_device(long batch, string optimizer)
    {
        var cfg = Optimized(Config(("hidden", 12L), ("list_metric", true)), batch, optimizer);
        var (one, oneServices) = await Fit(new RuntimeSettings(Chunks: 3, Devices: "cpu"), cfg);
        var tasks = CreateTestProbe();
        var minibatches = CreateTestProbe();
        Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
        Sys.EventStream.Subscribe(minibatches, typeof(Metrics.MinibatchRecord));
        var (two, twoServices) = await Fit(new RuntimeSettings(Chunks: 3, Devices: "cpu:2", CheckReplicas: true), cfg);

        Assert.Equal(RunStatus.Completed, two.Runs[0].Status);
        // Every replica went to its follower and was released by it; nothing waits in the hand-offs.
        Assert.Equal((0, 0, 0), (twoServices.Replicas.Count, twoServices.Leaders.Count, twoServices.PendingCheckpoints.Count));
        // Alone on cpu:2, the run (num_devices auto) trained every chunk and validation on both devices.
        var finished = tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m, 8);
        Assert.Equal(8, finished.Count); // 2 epochs x (3 chunks + validation)
        Assert.All(finished, f => Assert.Equal(("cpu-0", "cpu-1"), (f.DeviceId, Assert.Single(f.Followers!))));
        // ComputeMetrics saw each shard: the tensor metric "total" is summed, the non-tensor "rows" holds one entry per shard.
        var records = minibatches.ReceiveWhile(TimeSpan.FromSeconds(1), m => (Metrics.MinibatchRecord)m).Where(r => r.Mode == Spec.Mode.Train).ToList();
        Assert.Equal(2 * (int)Math.Ceiling(96.0 / batch), records.Count);
        Assert.All(records, r =>
        {
            Assert.Equal(r.Examples, r.Values.Numbers["total"]);
            Assert.Equal(DataParallelSplit(r.Examples), r.Values.Objects["rows"].Select(Convert.ToInt32));
        });

        var gap = MaxDifference(oneServices.Models.CopyWeights(1)!, twoServices.Models.CopyWeights(1)!);
        Assert.InRange(gap, 0, ShardTolerance);
        Assert.Equal(one.Runs[0].ValidationHistory[^1]["loss"], two.Runs[0].ValidationHistory[^1]["loss"], ShardTolerance);
        Assert.Equal(one.Runs[0].ValidationHistory[^1]["accuracy"], two.Runs[0].ValidationHistory[^1]["accuracy"]);
        Assert.Equal(one.Runs[0].TrainHistory[^1]["loss"], two.Runs[0].TrainHistory[^1]["loss"], ShardTolerance);
    }

    /// <summary>
    /// <c>accumulate_grad_batches</c> 4 over minibatches of 8 steps as minibatches of 32 do: the same 96 rows in the same
    /// order (one chunk), the gradient of each window's mean loss. Float32 sums in another order only.
    /// </summary>
    [Theory]
    [InlineData("SGD")]
    [InlineData("Adam")]
    public async Task Accumulating_four_minibatches_of_8_ends_as_minibatches_of_32_do(string optimizer)
    {
        var big = Optimized(Config(("hidden", 12L)), 32, optimizer);
        var accumulated = Optimized(Config(("hidden", 12L)), 8, optimizer).With("accumulate_grad_batches", 4L);
        var (one, oneServices) = await Fit(new RuntimeSettings(Chunks: 1, Devices: "cpu"), big);
        var (four, fourServices) = await Fit(new RuntimeSettings(Chunks: 1, Devices: "cpu"), accumulated);

        Assert.Equal((RunStatus.Completed, RunStatus.Completed), (one.Runs[0].Status, four.Runs[0].Status));
        Assert.InRange(MaxDifference(oneServices.Models.CopyWeights(1)!, fourServices.Models.CopyWeights(1)!), 0, ShardTolerance);
        // and not by chance: without accumulation the same minibatches of 8 step 12 times an epoch, and end elsewhere
        var (plain, plainServices) = await Fit(new RuntimeSettings(Chunks: 1, Devices: "cpu"), Optimized(Config(("hidden", 12L)), 8, optimizer));
        Assert.True(MaxDifference(oneServices.Models.CopyWeights(1)!, plainServices.Models.CopyWeights(1)!) > 1e-3);
        Assert.Equal(one.Runs[0].ValidationHistory[^1]["loss"], four.Runs[0].ValidationHistory[^1]["loss"], ShardTolerance);
    }

    /// <summary>
    /// Accumulation on two devices: each replica sums its shards' gradients over the window and the leader divides the sum
    /// over replicas by the window's rows. Minibatches of 15 (shards of 8 and 7) in 3 chunks of 2 and 2 and 3 minibatches
    /// (the last of 6 rows): windows of 2 end at each chunk's end.
    /// </summary>
    [Fact]
    public async Task Accumulation_on_two_devices_ends_within_a_tight_tolerance_of_one_device()
    {
        var cfg = Optimized(Config(("hidden", 12L)), 15, "Adam").With("accumulate_grad_batches", 2L).With("max_grad_norm", 0.5);
        var (one, oneServices) = await Fit(new RuntimeSettings(Chunks: 3, Devices: "cpu"), cfg);
        var (two, twoServices) = await Fit(new RuntimeSettings(Chunks: 3, Devices: "cpu:2", CheckReplicas: true), cfg);

        Assert.Equal((RunStatus.Completed, RunStatus.Completed), (one.Runs[0].Status, two.Runs[0].Status));
        Assert.InRange(MaxDifference(oneServices.Models.CopyWeights(1)!, twoServices.Models.CopyWeights(1)!), 0, ShardTolerance);
        Assert.Equal(one.Runs[0].TrainHistory[^1]["loss"], two.Runs[0].TrainHistory[^1]["loss"], ShardTolerance);
    }

    private static int[] DataParallelSplit(int rows) => Scheduling.DataParallel.Split(Enumerable.Range(0, rows).ToArray(), 2).Select(s => s.Length).ToArray();

    [Fact]
    public async Task A_run_moves_from_two_devices_to_one_when_another_run_joins_mid_fit_and_loses_nothing()
    {
        var cfg = Optimized(Config(("hidden", 12L), ("epochs", 3L), ("sleep_ms", 15L)), 16, "Adam");
        var (alone, aloneServices) = await Fit(new RuntimeSettings(Chunks: 3, Devices: "cpu"), cfg);
        var tasks = CreateTestProbe();
        Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
        var (fit, s) = Experiment(new RuntimeSettings(Chunks: 3, Devices: "cpu:2", CheckReplicas: true));
        var done = fit.Ask<FitCompleted>(new RunFit([new RunDefinition(1, cfg)]), Patience);

        // Run 1 trains alone, spread over both devices; once it has finished a chunk, a clone joins the fit.
        var first = tasks.ExpectMsg<TaskFinished>(Patience);
        Assert.Equal(["cpu-1"], first.Followers);
        var controller = CreateTestProbe();
        fit.Tell(new ApplyControl(1, Control.ControlOp.CloneOf(1, new Dictionary<string, string>()), new RunDefinition(2, cfg, ClonedFrom: 1)), controller);
        var result = await done;

        var finished = new List<TaskFinished> { first };
        finished.AddRange(tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m));
        var run1 = finished.Where(f => f.Task.RunId == 1).ToList();
        Assert.Equal(12, run1.Count); // 3 epochs x (3 chunks + validation): each exactly once
        Assert.Equal(run1.Count, run1.Select(f => f.Task).Distinct().Count());
        Assert.Null(run1[^1].Followers); // it ended on one device, beside the clone
        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
        // Its state moved from two replicas to one without loss: it ends where it ends on one device all along.
        Assert.InRange(MaxDifference(aloneServices.Models.CopyWeights(1)!, s.Models.CopyWeights(1)!), 0, ShardTolerance);
        Assert.Equal(alone.Runs[0].ValidationHistory[^1]["loss"], result.Runs[0].ValidationHistory[^1]["loss"], ShardTolerance);
    }

    [Fact]
    public async Task A_run_out_of_device_memory_fails_naming_the_run_and_the_device_and_the_others_go_on()
    {
        // Run 1 asks for both devices; its first minibatch's shards (8 rows each) "do not fit", on whichever device
        // reports first. Run 2 then trains alone.
        var (result, _) = await Fit(new RuntimeSettings(Chunks: 2, Devices: "cpu:2"), Config(("fail", "oom"), ("num_devices", 2L)), Config(("hidden", 6L)));
        var failed = result.Runs[0];
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Matches(@"^run 1 does not fit on cpu-[01] \(out of memory\): ExternalException: CUDA out of memory", failed.Failure!.Message);
        Assert.Equal("ComputeForward", failed.Failure.Method);
        Assert.Equal(RunStatus.Completed, result.Runs[1].Status);
    }

    [Fact]
    public async Task A_fit_refuses_a_run_asking_for_more_devices_than_it_has()
    {
        var (fit, _) = Experiment(new RuntimeSettings(Devices: "cpu:2"));
        var refusal = await fit.Ask<Status.Failure>(new RunFit([new RunDefinition(1, Config()), new RunDefinition(2, Config(("num_devices", 3L)))]), Patience);
        Assert.Equal("run 2: num_devices = 3, but the fit has 2 devices (--devices)", refusal.Cause.Message);
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
        Assert.Matches(@"^loss \(train, epoch 1, chunk 1\): the loss is NaN in minibatch 1 of the chunk; the inputs of its rows are all finite; " +
                       @"its rows: 16 ids from \d+ to \d+$", nan.Failure!.ToString());

        Assert.Equal(RunStatus.Completed, result.Runs[1].Status);
        AssertSameWeights(aloneServices.Models.CopyWeights(1)!, s.Models.CopyWeights(2)!);
        Assert.Null(s.Models.CopyWeights(3)); // a failed run's state is released
    }

    [Theory]
    [InlineData("cpu", 1L)]
    [InlineData("cpu:2", 2L)]
    public async Task A_nan_input_fails_the_run_naming_its_minibatch_and_the_row_that_holds_it(string devices, long numDevices)
    {
        using var faulty = new TinyData(nanAt: 40);
        var (experiment, _) = Experiment(new RuntimeSettings(Chunks: 2, Devices: devices), faulty.Handle);
        var result = await experiment.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(("num_devices", numDevices)))]), Patience);

        var run = result.Runs[0];
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal(("loss", "train", 1), (run.Failure!.Method, run.Failure.Mode, run.Failure.Epoch));
        // On two devices the minibatch is computed as two shards of 8 rows: the shard holding row 40 is named.
        Assert.Matches(@"^the loss is NaN in minibatch [1-3] of the chunk; row id 40 holds a non-finite input \(x\); " +
                       @"its rows: (16 ids from \d+ to \d+|ids (\d+, ){7}\d+)$", run.Failure.Message);
    }

    [Fact]
    public async Task A_native_fault_outside_the_spec_is_retried_once_from_the_last_checkpoint_and_the_run_ends_bit_identical()
    {
        // 96 rows, batch 16, 3 chunks: the 9th training minibatch is the first of epoch 2's chunk 2. Epoch 1's end is
        // the newest checkpoint (save-strategy time), so the retry trains epoch 2's chunk 1 again, then chunk 2.
        var settings = new RuntimeSettings(Chunks: 3, Devices: "cpu");
        var (clean, cleanServices) = await Fit(settings, checkpoints, Config(("hidden", 10L)));
        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings.Ref, typeof(RunWarning));
        // The run's warnings go out once, as RunWarning (which the experiment logs and the CLI prints), not also through Akka's logger.
        var (retried, s) = await EventFilter.Warning(contains: "retrying").ExpectAsync(0,
            () => Fit(settings, checkpoints, Config(("hidden", 10L), ("fail", $"backward:{Guid.NewGuid():N}:9"))));

        Assert.Equal(RunStatus.Completed, retried.Runs[0].Status);
        AssertSameWeights(cleanServices.Models.CopyWeights(1)!, s.Models.CopyWeights(1)!);
        Assert.Equal(clean.Runs[0].TrainHistory, retried.Runs[0].TrainHistory);
        Assert.Equal(clean.Runs[0].ValidationHistory, retried.Runs[0].ValidationHistory);
        var warning = (RunWarning)warnings.FishForMessage(m => m is RunWarning w && w.Message.Contains("retrying", StringComparison.Ordinal), Patience);
        Assert.Matches(@"(?s)^run 1: loss\.backward \(train, epoch 2, chunk 2\): ExternalException: .*; a native fault outside the MLSpec code: retrying run 1 epoch 2 chunk 2 once from the newest checkpoint$", warning.Message);
    }

    /// <summary>A real local store whose saves take longer (a slow disk), and the saves of one checkpoint fail.</summary>
    private sealed class SlowStore(ICheckpointStore inner, TimeSpan delay, CheckpointRef? failing = null) : ICheckpointStore
    {
        public async Task SaveAsync(CheckpointRef key, CheckpointHeader header, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
        {
            await Task.Delay(delay, cancellationToken);
            if (key == failing) throw new IOException($"{Describe(key)}: the disk refused the write");
            await inner.SaveAsync(key, header, payload, cancellationToken);
        }

        public Checkpoint Load(CheckpointRef key) => inner.Load(key);
        public IReadOnlyList<CheckpointRef> List(int runId) => inner.List(runId);
        public void Delete(CheckpointRef key) => inner.Delete(key);
        public string Describe(CheckpointRef key) => inner.Describe(key);
    }

    [Fact]
    public async Task An_epochs_validation_and_the_next_epoch_train_while_its_checkpoint_is_written_and_end_as_a_fit_that_waits()
    {
        var settings = new RuntimeSettings(Chunks: 2, Devices: "cpu");
        var (waited, waitedServices) = await Fit(settings, checkpoints, Config(("hidden", 10L)));
        var events = CreateTestProbe();
        Sys.EventStream.Subscribe(events.Ref, typeof(TaskFinished));
        Sys.EventStream.Subscribe(events.Ref, typeof(RunJournaled));
        var updates = CreateTestProbe();
        Sys.EventStream.Subscribe(updates.Ref, typeof(RunUpdated));
        var (experiment, s) = Experiment(settings, null, new SlowStore(new LocalCheckpointStore(Path.Combine(checkpoints, "slow")), TimeSpan.FromMilliseconds(700)));
        var ahead = await experiment.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(("hidden", 10L)))]), Patience);

        // Epoch 1's last chunk is journaled once its checkpoint is durable; its validation and epoch 2's first chunk
        // trained meanwhile.
        var seen = new List<string>();
        while (!seen.Contains("journaled epoch 1 chunk 2"))
            seen.Add(events.ExpectMsg<object>(Patience) switch
            {
                TaskFinished done => done.Task.ToString().Replace("run 1 ", ""),
                RunJournaled { Event: ChunkCompleted c } => $"journaled epoch {c.Epoch + 1} chunk {c.Chunk + 1}",
                _ => "",
            });
        Assert.Subset(seen.ToHashSet(), new HashSet<string> { "epoch 1 validation", "epoch 2 chunk 1" });
        Assert.True(seen.IndexOf("epoch 1 chunk 2") < seen.IndexOf("epoch 1 validation"));
        // What was decided behind the write is journaled command by command: observers see the epoch's trained
        // chunks before its validation, as when the device waits.
        var states = updates.ReceiveWhile(TimeSpan.FromSeconds(1), m => ((RunUpdated)m).State);
        Assert.Contains(states, r => r is { EpochsDone: 0, ChunksDone: 2, ValidationDone: false });

        Assert.Equal(RunStatus.Completed, ahead.Runs[0].Status);
        AssertSameWeights(waitedServices.Models.CopyWeights(1)!, s.Models.CopyWeights(1)!);
        Assert.Equal(waited.Runs[0].TrainHistory, ahead.Runs[0].TrainHistory);
        Assert.Equal(waited.Runs[0].ValidationHistory, ahead.Runs[0].ValidationHistory);
        Assert.Equal(waited.Runs[0].ChunkMetrics, ahead.Runs[0].ChunkMetrics);
    }

    [Fact]
    public async Task A_checkpoint_write_that_fails_while_the_next_task_runs_fails_its_run_at_its_last_journaled_chunk_and_the_fit_ends()
    {
        var store = new SlowStore(new LocalCheckpointStore(checkpoints), TimeSpan.FromMilliseconds(500), failing: new CheckpointRef(1, 0, 1));
        var (experiment, _) = Experiment(new RuntimeSettings(Chunks: 2, Devices: "cpu"), null, store);
        var result = await experiment.Ask<FitCompleted>(new RunFit([
            new RunDefinition(1, Config(("hidden", 10L))), new RunDefinition(2, Config(("hidden", 6L)))]), Patience);

        var failed = result.Runs[0];
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Equal("checkpoint", failed.Failure!.Method);
        Assert.Contains("the disk refused the write", failed.Failure.Message, StringComparison.Ordinal);
        // What was decided behind the write (epoch 1's last chunk, its validation and metrics) was taken back.
        Assert.Equal((0, 1, false), (failed.EpochsDone, failed.ChunksDone, failed.ValidationDone));
        Assert.Empty(failed.TrainHistory);
        Assert.True(result.Runs[1].Status == RunStatus.Completed, $"run 2: {result.Runs[1].Status} {result.Runs[1].Failure}");
    }

    [Fact]
    public async Task A_native_fault_that_comes_back_after_its_retry_fails_the_run_alone()
    {
        var (result, _) = await Fit(new RuntimeSettings(Chunks: 2, Devices: "cpu"), Config(("fail", "backward")), Config(("hidden", 6L)));

        var failed = result.Runs[0];
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Equal("loss.backward", failed.Failure!.Method);
        Assert.Equal((1, 1), (failed.Failure.Epoch, failed.Failure.Chunk));
        Assert.StartsWith("ExternalException: ", failed.Failure.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Completed, result.Runs[1].Status);
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

    /// <summary>A fit of a run whose RowPrep hangs on row 5 and a run that is fine, on two devices and two loader threads.</summary>
    private async Task<(IActorRef Fit, Task<FitCompleted> Result, Akka.TestKit.TestProbe Warnings)> FitWithAStuckRowPrep(RuntimeSettings settings)
    {
        var warnings = CreateTestProbe();
        Sys.EventStream.Subscribe(warnings, typeof(RunWarning));
        var (fit, _) = Experiment(settings with { Chunks = 2, Devices = "cpu:2", Loaders = 2 });
        var result = fit.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(("fail", "hang:5"))), new RunDefinition(2, Config(("epochs", 3L)))]), Patience);
        await Task.Yield();
        return (fit, result, warnings);
    }

    [Fact]
    public async Task A_stuck_row_prep_holds_only_its_own_run_and_a_stop_of_that_run_ends_it()
    {
        var progress = CreateTestProbe();
        Sys.EventStream.Subscribe(progress, typeof(RunUpdated));
        var (fit, result, warnings) = await FitWithAStuckRowPrep(new RuntimeSettings(LoaderStallAfter: 0.3));

        var stalled = await warnings.FishForMessageAsync<RunWarning>(w => w.Message.Contains("has not returned"), TimeSpan.FromSeconds(20));
        Assert.Equal(1, stalled.RunId);
        Assert.Contains("RowPrep (row id 5) has not returned for", stalled.Message);
        // The other run trains on to its end while run 1 waits for its row.
        await progress.FishForMessageAsync<RunUpdated>(u => u.State is { RunId: 2, Status: RunStatus.Completed }, TimeSpan.FromSeconds(30));

        fit.Tell(new ApplyControl(1, Control.ControlOp.Stop(1), null), progress);
        var stopped = await progress.FishForMessageAsync<ControlProgress>(p => p.Outcome.Status != Control.ControlStatus.Pending, TimeSpan.FromSeconds(10));
        Assert.Equal(Control.ControlStatus.Applied, stopped.Outcome.Status);
        var completed = await result.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal((RunStatus.Stopped, EndReason.User), (completed.Runs[0].Status, completed.Runs[0].EndedBy));
        Assert.Equal(RunStatus.Completed, completed.Runs[1].Status);
    }

    [Fact]
    public async Task A_loader_call_past_the_time_limit_fails_its_run_naming_the_method_and_the_row()
    {
        var (_, result, _) = await FitWithAStuckRowPrep(new RuntimeSettings(SpecCallTimeout: 0.5));

        var completed = await result.WaitAsync(TimeSpan.FromSeconds(40));
        var failure = completed.Runs[0].Failure!;
        Assert.Equal(RunStatus.Failed, completed.Runs[0].Status);
        Assert.Equal(("RowPrep", 5L), (failure.Method, failure.RowId));
        Assert.StartsWith("MLSpec.RowPrep (train, epoch 1, chunk ", failure.ToString(), StringComparison.Ordinal);
        Assert.Contains("did not return within 0.5 s (rapidfire.spec-call-timeout)", failure.Message);
        Assert.Equal(RunStatus.Completed, completed.Runs[1].Status);
    }

    [Fact]
    public async Task A_cancel_ends_a_fit_whose_row_prep_is_stuck()
    {
        var (fit, result, warnings) = await FitWithAStuckRowPrep(new RuntimeSettings(LoaderStallAfter: 0.3));
        await warnings.FishForMessageAsync<RunWarning>(w => w.Message.Contains("has not returned"), TimeSpan.FromSeconds(20));

        fit.Tell(new CancelFit());

        var completed = await result.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(completed.Cancelled);
        Assert.Equal((RunStatus.Stopped, EndReason.Cancelled), (completed.Runs[0].Status, completed.Runs[0].EndedBy));
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
        var device = await Sys.ActorSelection(experiment.Path / "devices" / "device-cpu").ResolveOne(TimeSpan.FromSeconds(1));
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
