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
