using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Tests;

public class RunStateTests
{
    private static readonly Config Cfg = new([new("epochs", 2L), new("batch_size", 8L)]);
    private static readonly IReadOnlyDictionary<string, double> Metrics = new Dictionary<string, double> { ["loss"] = 0.5 };

    private static RunState Run(RunState state, params IRunCommand[] commands)
    {
        foreach (var command in commands)
            foreach (var e in state.Decide(command))
                state = state.Apply(e);
        return state;
    }

    private static RunState Started(bool validation = true) => Run(new RunState(1, Cfg), new StartRun(2, validation));

    [Fact]
    public void A_failure_shows_as_one_printable_line_in_tables_and_whole_in_the_log()
    {
        var decoder = new RunFailure("RowPrep", "cannot read image a.png: \0\0\0\0truncated\0", "train", 1, 2, 40);
        var libtorch = new RunFailure("optimizer", "ExternalException: Expected false to be true\nException raised from toFloat at /pytorch/c10/core/Scalar.h:140\nframe #0: c10::Error", "train", 4, 2);

        Assert.Equal("MLSpec.RowPrep (train, epoch 1, chunk 2, row id 40): cannot read image a.png: truncated", decoder.OneLine());
        Assert.Equal("optimizer (train, epoch 4, chunk 2): ExternalException: Expected false to be true (the full message is in experiment.log)", libtorch.OneLine());
        Assert.Equal(libtorch.ToString(), RunFailure.Printable(libtorch.ToString())); // the log keeps every line
        Assert.DoesNotContain('\0', RunFailure.Printable(decoder.ToString()));
    }

    [Fact]
    public void A_started_run_asks_for_its_chunks_then_its_validation_then_waits_for_the_metrics()
    {
        var run = Started();
        Assert.Equal(RunTask.Train(1, 0, 0), run.NextTask);
        run = Run(run, new ChunkTrained(RunTask.Train(1, 0, 0), 0.9, [], null));
        Assert.Equal(RunTask.Train(1, 0, 1), run.NextTask);
        run = Run(run, new ChunkTrained(RunTask.Train(1, 0, 1), 0.8, [], null));
        Assert.Equal(RunTask.Validate(1, 0), run.NextTask);
        run = Run(run, new ValidationFinished(RunTask.Validate(1, 0), []));
        Assert.Null(run.NextTask);
        Assert.Equal("epoch 1/2 validating", run.Where);
    }

    [Fact]
    public void An_epoch_completes_once_both_metrics_are_closed_in_either_order()
    {
        var run = Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null), new ChunkTrained(RunTask.Train(1, 0, 1), 1, [], null),
            new ValidationFinished(RunTask.Validate(1, 0), []), new CloseEpochMetrics(Mode.Validation, 0, Metrics, false));
        Assert.Equal(0, run.EpochsDone);
        run = Run(run, new CloseEpochMetrics(Mode.Train, 0, Metrics, false));
        Assert.Equal(1, run.EpochsDone);
        Assert.Equal(RunTask.Train(1, 1, 0), run.NextTask);
        Assert.Single(run.TrainHistory);
        Assert.Single(run.ValidationHistory);
    }

    [Fact]
    public void The_run_completes_at_its_epochs_bound()
    {
        var run = Started(validation: false);
        for (var epoch = 0; epoch < 2; epoch++)
            run = Run(run, new ChunkTrained(RunTask.Train(1, epoch, 0), 1, [], null), new ChunkTrained(RunTask.Train(1, epoch, 1), 1, [], null),
                new CloseEpochMetrics(Mode.Train, epoch, Metrics, false));
        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(EndReason.Epochs, run.EndedBy);
        Assert.Equal(2, run.EpochsDone);
        Assert.Null(run.NextTask);
    }

    [Fact]
    public void HasConverged_completes_the_run_early()
    {
        var run = Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null), new ChunkTrained(RunTask.Train(1, 0, 1), 1, [], null),
            new CloseEpochMetrics(Mode.Train, 0, Metrics, false), new ValidationFinished(RunTask.Validate(1, 0), []),
            new CloseEpochMetrics(Mode.Validation, 0, Metrics, true));
        Assert.Equal(RunStatus.Completed, run.Status);
        Assert.Equal(EndReason.Converged, run.EndedBy);
        Assert.Equal(1, run.EpochsDone);
    }

    [Fact]
    public void Stale_or_out_of_order_reports_change_nothing_and_an_ended_run_stays_ended()
    {
        var run = Started();
        Assert.Empty(run.Decide(new ChunkTrained(RunTask.Train(1, 0, 1), 1, [], null)));
        Assert.Empty(run.Decide(new ValidationFinished(RunTask.Validate(1, 0), [])));
        var failed = Run(run, new FailRun(new RunFailure("RowPrep", "boom", "train", 1, 1, 7)));
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Equal("MLSpec.RowPrep (train, epoch 1, chunk 1, row id 7): boom", failed.Failure!.ToString());
        Assert.Empty(failed.Decide(new StopRun(EndReason.Cancelled)));
        Assert.Null(failed.NextTask);
    }

    [Fact]
    public void Epoch_metrics_apply_once_and_only_to_a_pass_that_is_done()
    {
        var run = Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null));
        // The train pass is not done (a checkpoint of its last chunk was lost while its metrics were being closed).
        Assert.Empty(run.Decide(new CloseEpochMetrics(Mode.Train, 0, Metrics, false)));
        Assert.Empty(run.Decide(new CloseEpochMetrics(Mode.Validation, 0, Metrics, false)));
        run = Run(run, new ChunkTrained(RunTask.Train(1, 0, 1), 1, [], null), new CloseEpochMetrics(Mode.Train, 0, Metrics, false));
        // Asked again after a recovery: the second answer is ignored, not a second epoch of history.
        Assert.Empty(run.Decide(new CloseEpochMetrics(Mode.Train, 0, Metrics, false)));
        Assert.Single(run.TrainHistory);
    }

    [Fact]
    public void A_run_decided_ahead_of_its_journal_is_scheduled_on_its_home_node_but_takes_no_operation_and_holds_the_fit_open()
    {
        var run = Run(Started(), new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null));
        var fit = new FitState([]).Joined("a", ["a/cpu"]).Joined("b", ["b/cpu"]).WithRun(run);
        var (scheduled, first) = fit.Schedule();
        var home = Assert.Single(first).DeviceId;
        var other = home == "a/cpu" ? "b/cpu" : "a/cpu";
        scheduled = scheduled.DeviceFreed(home);
        var ahead = Run(run, new ChunkTrained(RunTask.Train(1, 0, 1), 1, [], null));

        var decided = scheduled.WithRun(ahead, durable: false);
        Assert.False(decided.AtBoundary(1)); // an IC operation waits for the journal
        Assert.Equal(new Assignment(home, RunTask.Validate(1, 0)), Assert.Single(decided.Schedule().Assignments));
        // Its home's device busy with another task: it waits rather than train where its state is not.
        var homeBusy = decided with { Busy = decided.Busy.SetItem(home, RunTask.Train(9, 0, 0)) };
        Assert.Empty(homeBusy.Schedule().Assignments);

        var journaled = decided.WithRun(ahead);
        Assert.True(journaled.AtBoundary(1));
        Assert.Equal(other, Assert.Single((journaled with { Busy = journaled.Busy.SetItem(home, RunTask.Train(9, 0, 0)) }).Schedule().Assignments).DeviceId);

        var ended = ahead.Apply(new RunEnded(RunStatus.Stopped, EndReason.User, null));
        Assert.False(scheduled.WithRun(ended, durable: false).IsDone);
        Assert.True(scheduled.WithRun(ended).IsDone);
    }

    [Fact]
    public void A_run_whose_task_still_runs_on_a_device_is_not_given_another()
    {
        var run = Started();
        var other = new RunState(2, Cfg).Apply(new RunStarted(2, true));
        var (scheduled, assignments) = new FitState(["cpu:0", "cpu:1"]).WithRun(run).WithRun(other).Schedule();
        Assert.Equal(2, assignments.Count);
        scheduled = scheduled.DeviceFreed(assignments.Single(a => a.Task.RunId == 2).DeviceId);
        // Run 1's state went back behind its task (a checkpoint written ahead of it was lost) while its device still runs it.
        var back = scheduled.WithRun(run.Apply(new ChunkCompleted(0, 0, 1, [], null)), durable: false).WithRun(run, recovered: true);
        Assert.Equal(1, back.Runs[1].NextTask!.RunId);
        Assert.DoesNotContain(back.Schedule().Assignments, a => a.Task.RunId == 1);
    }

    [Fact]
    public void The_fit_frees_a_runs_slot_only_when_its_state_moves_past_the_task_in_flight()
    {
        var run = Started();
        var fit = new FitState(["cpu"]).WithRun(run);
        var (scheduled, assignments) = fit.Schedule();
        Assert.Equal(new Assignment("cpu", RunTask.Train(1, 0, 0)), Assert.Single(assignments));
        scheduled = scheduled.DeviceFreed("cpu");
        Assert.Empty(scheduled.Schedule().Assignments);            // the run's report has not arrived yet
        var moved = scheduled.WithRun(Run(run, new ChunkTrained(RunTask.Train(1, 0, 0), 1, [], null)));
        Assert.Equal(RunTask.Train(1, 0, 1), Assert.Single(moved.Schedule().Assignments).Task);
        Assert.False(moved.IsDone);
    }
}
