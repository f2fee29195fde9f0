using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Tests;

/// <summary>
/// The fit's decisions without an actor system: what <see cref="FitState.Decide"/> makes of each input (scheduling,
/// IC operations, warm clones, pruning, the min-workers wait, the end), as effects the FitActor only carries out.
/// </summary>
public class FitStateDecideTests
{
    private static readonly Config Cfg = Config.FromJson("""{"epochs":1,"batch_size":8,"optimizer":{"name":"Adam","args":{"lr":0.01}}}""");

    /// <summary>A fit of 32 training rows in 2 chunks (4 minibatches of 8), with validation.</summary>
    private static FitState Empty(int minWorkers = 0, PruningRule? pruning = null) =>
        new FitState([]) { TrainRows = 32, Chunks = 2, HasValidation = true, MinWorkers = minWorkers, Pruning = pruning };

    private static RunDefinition Run(int id, Config? cfg = null) => new(id, cfg ?? Cfg);

    private static RunState Started(int id, Config? cfg = null) => new RunState(id, cfg ?? Cfg).Apply(new RunStarted(2, true));

    private static (FitState Fit, IReadOnlyList<FitEffect> Effects) Step(FitState fit, FitInput input)
    {
        var decision = fit.Decide(input);
        return (decision.State, decision.Effects);
    }

    /// <summary>Two started runs on one local device, the first one's first chunk dispatched.</summary>
    private static FitState Training()
    {
        var (fit, _) = Step(Empty(), new FitInput.Started(new RunFit([Run(1), Run(2)])));
        (fit, _) = Step(fit, new FitInput.Joined(FitState.LocalNode, ["cpu"]));
        (fit, _) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(1))));
        (fit, _) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(2))));
        return fit;
    }

    private static T Single<T>(IEnumerable<FitEffect> effects) where T : FitEffect => Assert.Single(effects.OfType<T>());

    [Fact]
    public void A_fit_starts_an_actor_per_run_and_schedules_only_once_every_run_has_started_and_a_device_has_joined()
    {
        var (fit, effects) = Step(Empty(), new FitInput.Started(new RunFit([Run(1), Run(2)])));
        Assert.Equal([1, 2], effects.OfType<FitEffect.StartRunActor>().Select(s => s.Run.RunId));
        Assert.All(effects.OfType<FitEffect.TellRun>(), t => Assert.Equal(new StartRun(2, true), t.Command));
        Assert.Empty(effects.OfType<FitEffect.Dispatch>());

        (fit, effects) = Step(fit, new FitInput.Joined(FitState.LocalNode, ["cpu"]));
        Assert.Contains(effects, e => e is FitEffect.Publish { Event: WorkerChanged { Message: "worker local joined with cpu" } });
        Assert.Empty(effects.OfType<FitEffect.Dispatch>()); // the runs have not started

        (fit, effects) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(1))));
        Assert.Empty(effects.OfType<FitEffect.Dispatch>()); // run 2 has not started: the fairest order is unknown
        (fit, effects) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(2))));
        var dispatch = Single<FitEffect.Dispatch>(effects);
        Assert.Equal(("cpu", RunTask.Train(1, 0, 0)), (dispatch.Assignment.DeviceId, dispatch.Assignment.Task));
        Assert.Equal(2, dispatch.ChunksPerEpoch);
        Assert.Equal(RunTask.Train(1, 0, 0), fit.Busy["cpu"]);
    }

    [Fact]
    public void A_trained_chunk_goes_to_its_run_and_the_device_gets_the_next_task_from_the_state_decided_ahead_of_the_journal()
    {
        var fit = Training();
        var task = fit.Busy["cpu"];
        var (afterTask, effects) = Step(fit, new FitInput.Finished(new TaskFinished("cpu", task, new Trained(0.5, new TaskTiming(2, 0.1, 0), [], null))));
        var told = Single<FitEffect.TellRun>(effects);
        Assert.Equal(1, told.RunId);
        Assert.IsType<ChunkTrained>(told.Command);
        // run 1's task is in flight until its state moves on: the device takes run 2's first chunk
        Assert.Equal(RunTask.Train(2, 0, 0), Single<FitEffect.Dispatch>(effects).Assignment.Task);

        var ahead = Started(1).Apply(new ChunkCompleted(0, 0, 0.5, [], null));
        var (decided, _) = Step(afterTask, new FitInput.Decided(ahead));
        Assert.Contains(1, decided.Undurable);
        var (journaled, published) = Step(decided, new FitInput.Journaled(new RunUpdated(ahead)));
        Assert.DoesNotContain(1, journaled.Undurable);
        Assert.Contains(published, e => e is FitEffect.Publish { Event: RunUpdated });
    }

    [Fact]
    public void A_stop_waits_for_its_runs_chunk_boundary_then_goes_to_the_run_and_is_reported_once_the_run_journals_it()
    {
        var fit = Training();
        var stop = new ApplyControl(7, ControlOp.Stop(1), null);
        var (pending, effects) = Step(fit, new FitInput.Accept(stop));
        var report = Single<FitEffect.Report>(effects);
        Assert.Equal((ControlStatus.Pending, false), (report.Outcome.Status, report.Resolved));
        Assert.Empty(effects.OfType<FitEffect.TellRun>());

        var (freed, _) = Step(pending, new FitInput.Finished(new TaskFinished("cpu", RunTask.Train(1, 0, 0), new Trained(0.5, new TaskTiming(2, 0.1, 0), [], null))));
        var atBoundary = Started(1).Apply(new ChunkCompleted(0, 0, 0.5, [], null));
        (fit, effects) = Step(freed, new FitInput.Journaled(new RunUpdated(atBoundary)));
        var told = Single<FitEffect.TellRun>(effects);
        Assert.Equal(new Controlled(7, new StopRun(EndReason.User)), told.Command);
        Assert.True(fit.Applying.ContainsKey(7));

        var stopped = atBoundary.Apply(new RunEnded(RunStatus.Stopped, EndReason.User, null));
        (fit, effects) = Step(fit, new FitInput.CarriedOut(new ControlCarriedOut(7, true, stopped)));
        report = Single<FitEffect.Report>(effects);
        Assert.Equal((ControlStatus.Applied, true), (report.Outcome.Status, report.Resolved));
        Assert.Empty(fit.Applying);
    }

    [Fact]
    public void A_warm_clone_copies_its_parents_state_at_its_last_chunk_then_starts_from_it_or_is_dropped_when_the_state_is_gone()
    {
        var (fit, _) = Step(Empty(), new FitInput.Started(new RunFit([Run(1)])));
        (fit, _) = Step(fit, new FitInput.Joined(FitState.LocalNode, ["cpu"]));
        (fit, _) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(1))));
        (fit, _) = Step(fit, new FitInput.Finished(new TaskFinished("cpu", RunTask.Train(1, 0, 0), new Trained(0.5, new TaskTiming(2, 0.1, 0), [], null))));
        var checkpoint = new CheckpointRef(1, 0, 0);
        var parent = Started(1).Apply(new ChunkCompleted(0, 0, 0.5, [], checkpoint));
        // stop the parent's next chunk from starting, so that it stands at its boundary when the clone is applied
        (fit, _) = Step(fit with { Held = [1] }, new FitInput.Journaled(new RunUpdated(parent)));

        var clone = new ApplyControl(3, ControlOp.CloneOf(1, new Dictionary<string, string>(), warm: true), new RunDefinition(2, Cfg, 1, true));
        var (copying, effects) = Step(fit, new FitInput.Accept(clone));
        var copy = Single<FitEffect.CopyWarmState>(effects);
        Assert.Equal((new CheckpointRef(2, 0, 0), checkpoint), (copy.Key, copy.FromCheckpoint));
        Assert.Empty(effects.OfType<FitEffect.StartRunActor>());

        var (started, startedEffects) = Step(copying, new FitInput.WarmStateCopied(copy.Control, copy.Parent, copy.Key));
        Assert.Equal(2, Single<FitEffect.StartRunActor>(startedEffects).Run.RunId);
        var warm = Assert.IsType<WarmStart>(Assert.IsType<Controlled>(Single<FitEffect.TellRun>(startedEffects).Command).Command);
        Assert.Equal((1, 1), (warm.ParentRunId, warm.State.ChunksTrained));
        Assert.True(started.Runs.ContainsKey(2));

        var (dropped, droppedEffects) = Step(copying, new FitInput.WarmStateMissing(copy.Control, copy.Parent));
        Assert.Equal(ControlStatus.Dropped, Single<FitEffect.Report>(droppedEffects).Outcome.Status);
        Assert.Equal(2, Single<FitEffect.ForgetSpec>(droppedEffects).RunId);
        Assert.False(dropped.Runs.ContainsKey(2));
        Assert.Empty(dropped.Applying);
    }

    [Fact]
    public void A_cluster_fit_told_to_wait_for_its_workers_trains_only_once_they_have_joined_and_goes_on_when_one_leaves()
    {
        var (fit, effects) = Step(Empty(minWorkers: 1), new FitInput.Started(new RunFit([Run(1)])));
        Assert.Contains(effects, e => e is FitEffect.Publish { Event: WorkerChanged { Message: "the fit waits for 1 worker to join before it trains" } });
        (fit, _) = Step(fit, new FitInput.Joined(FitState.LocalNode, ["cpu"]));
        (fit, effects) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(1))));
        Assert.Empty(effects.OfType<FitEffect.Dispatch>()); // this node's device alone does not count

        (fit, effects) = Step(fit, new FitInput.Joined("w1", ["w1/cuda:0"]));
        Assert.Single(effects.OfType<FitEffect.Dispatch>());
        Assert.Equal(0, fit.MinWorkers);

        (fit, effects) = Step(fit, new FitInput.Left("w1"));
        Assert.DoesNotContain("w1/cuda:0", fit.Devices);
        Assert.Empty(fit.Workers);
        Assert.DoesNotContain(effects, e => e is FitEffect.Complete);
    }

    [Fact]
    public void The_min_workers_wait_is_read_through_the_runtime_settings_and_a_negative_one_names_the_setting()
    {
        Assert.Equal(0, RuntimeSettings.MinWorkersOf(Akka.Configuration.Config.Empty));
        Assert.Equal(2, RuntimeSettings.MinWorkersOf(Akka.Configuration.ConfigurationFactory.ParseString("rapidfire.cluster.min-workers = 2")));
        var bad = Assert.Throws<ConfigException>(() => RuntimeSettings.MinWorkersOf(Akka.Configuration.ConfigurationFactory.ParseString("rapidfire.cluster.min-workers = -1")));
        Assert.Contains("cluster.min-workers: must be >= 0, got -1", bad.Message);
    }

    [Fact]
    public void Pruning_stops_a_run_that_falls_behind_once_and_holds_it()
    {
        var rule = new PruningRule(PruningKind.MedianStopping, "loss", MetricGoal.Min) { MinResource = 1, MinSamples = 2 };
        var threeEpochs = Config.FromJson("""{"epochs":3,"batch_size":8,"optimizer":{"name":"Adam","args":{"lr":0.01}}}""");
        var fit = Empty(pruning: rule);
        (fit, _) = Step(fit, new FitInput.Started(new RunFit([Run(1, threeEpochs), Run(2, threeEpochs), Run(3, threeEpochs)])));
        foreach (var (id, loss) in new[] { (1, 0.1), (2, 0.2), (3, 0.9) })
            (fit, _) = Step(fit, new FitInput.Journaled(new RunUpdated(Started(id, threeEpochs)
                .Apply(new ChunkCompleted(0, 0, loss, [], null)).Apply(new ChunkCompleted(0, 1, loss, [], null))
                .Apply(new ValidationCompleted(0, []))
                .Apply(new EpochMetricsRecorded(Mode.Validation, 0, new Dictionary<string, double> { ["loss"] = loss }, false)))));
        var stopped = fit.Pruned;
        var (again, effects) = Step(fit, new FitInput.Decided(fit.Runs[3]));
        Assert.Equal([3], stopped);
        Assert.Contains(3, again.Held);
        Assert.Empty(effects.OfType<FitEffect.TellRun>()); // stopped once
    }

    [Fact]
    public void A_cancel_abandons_the_busy_devices_stops_every_unended_run_and_drops_waiting_operations()
    {
        var (fit, _) = Step(Training(), new FitInput.Accept(new ApplyControl(4, ControlOp.Stop(1), null)));
        var (cancelling, effects) = Step(fit, new FitInput.Cancel());
        Assert.True(cancelling.Cancelling);
        Assert.Equal("cpu", Single<FitEffect.CancelDevice>(effects).DeviceId);
        Assert.Equal([1, 2], effects.OfType<FitEffect.TellRun>().Where(t => t.Command is StopRun { Reason: EndReason.Cancelled }).Select(t => t.RunId));
        Assert.Equal(ControlStatus.Dropped, Single<FitEffect.Report>(effects).Outcome.Status);
        Assert.Empty(cancelling.Pending);
    }

    [Fact]
    public void The_fit_completes_once_every_run_has_ended_and_its_devices_are_idle_and_at_once_when_the_disk_is_full()
    {
        var (fit, _) = Step(Empty(), new FitInput.Started(new RunFit([Run(1)])));
        (fit, _) = Step(fit, new FitInput.Joined(FitState.LocalNode, ["cpu"]));
        var ended = Started(1).Apply(new RunEnded(RunStatus.Failed, "failure", null));
        var (_, effects) = Step(fit, new FitInput.Journaled(new RunUpdated(ended)));
        Assert.Null(Single<FitEffect.Complete>(effects).Interrupted);

        var (_, full) = Step(fit, new FitInput.OutOfSpace(new StorageFull(1, "No space left on device", "/data", 2_000_000)));
        Assert.Contains("No space left on device", Single<FitEffect.Complete>(full).Interrupted);
    }
}
