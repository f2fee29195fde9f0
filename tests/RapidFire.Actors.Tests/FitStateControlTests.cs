using System.Collections.Immutable;
using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;

namespace RapidFire.Actors.Tests;

/// <summary>The fit's pure state around IC operations: each run's one pending slot, chunk boundaries, and scheduling around both.</summary>
public class FitStateControlTests
{
    private static readonly Config Cfg = Config.FromJson("""{"epochs":2,"batch_size":8,"optimizer":{"name":"Adam","args":{"lr":0.01}}}""");

    private static RunState Started(int runId) => new RunState(runId, Cfg).Apply(new RunStarted(2, false));

    private static RunState Stopped(int runId) => Started(runId).Apply(new RunEnded(RunStatus.Stopped, EndReason.User, null));

    private static RunState AfterFirstChunk(int runId) => Started(runId).Apply(new ChunkCompleted(0, 0, 0.5, [], null));

    private static FitState Fit(params RunState[] runs) => Fit(["cpu"], runs);

    private static FitState Fit(IReadOnlyList<string> devices, params RunState[] runs) =>
        runs.Aggregate(new FitState(devices), (fit, run) => fit.WithRun(run));

    private static PendingControl Pending(int opId, ControlOp op) => new(opId, op, null);

    [Fact]
    public void A_stalled_task_is_cancelled_only_when_a_stop_or_delete_waits_on_its_run_and_then_the_run_stands_at_its_boundary()
    {
        var (scheduled, assignments) = Fit(["cpu:0", "cpu:1"], Started(1), Started(2)).Schedule();
        var task = assignments.Single(a => a.Task.RunId == 1).Task;
        var device = assignments.Single(a => a.Task.RunId == 1).DeviceId;

        Assert.Empty(scheduled.Queue(Pending(1, ControlOp.Stop(1))).ToCancel(1)); // not stalled: the stop waits for the boundary
        var stalled = scheduled.Stall(task);
        Assert.Empty(stalled.ToCancel(1)); // stalled, but nothing asks for it to end
        Assert.Empty(stalled.Queue(Pending(1, ControlOp.CloneOf(1, new Dictionary<string, string>()))).ToCancel(1)); // a clone waits
        Assert.Equal([device], stalled.Queue(Pending(1, ControlOp.Stop(1))).ToCancel(1));
        Assert.Equal([device], stalled.Queue(Pending(1, ControlOp.Delete(1))).ToCancel(1));
        Assert.Empty(stalled.Queue(Pending(1, ControlOp.Stop(2))).ToCancel(2)); // run 2's task is not stalled
        Assert.Equal(scheduled, scheduled.Stall(RunTask.Train(1, 1, 0))); // not the task in flight: ignored

        var abandoned = stalled.Queue(Pending(1, ControlOp.Stop(1))).DeviceFreed(device).Abandoned(task);
        Assert.True(abandoned.AtBoundary(1));
        Assert.Empty(abandoned.Stalled);
        var (next, ready) = abandoned.TakeReady(1);
        Assert.Equal(ControlKind.Stop, Assert.Single(ready).Op.Kind);
        Assert.True(next.Applying.ContainsKey(1));
    }

    [Fact]
    public void A_task_that_fails_with_a_transient_fault_is_retried_once_and_fails_its_run_the_second_time()
    {
        var fit = Fit(Started(1), Started(2));
        var task = RunTask.Train(1, 0, 1);

        var (once, first) = fit.RetryOnce(task);
        var (twice, second) = once.RetryOnce(task);
        var (_, other) = twice.RetryOnce(RunTask.Train(2, 0, 1));

        Assert.True(first);
        Assert.False(second);
        Assert.True(other); // each task of each run has its own retry
        Assert.Empty(fit.Retried);
    }

    [Fact]
    public void Queued_operations_wait_on_their_run_in_the_order_asked()
    {
        var fit = Fit(Started(1), Started(2))
            .Queue(Pending(1, ControlOp.Stop(1)))
            .Queue(Pending(2, ControlOp.Delete(2)))
            .Queue(Pending(3, ControlOp.Resume(1)));

        Assert.Equal([1, 3], fit.Pending[1].Select(p => p.OpId));
        Assert.Equal([2], fit.Pending[2].Select(p => p.OpId));
        Assert.Empty(fit.Applying);
    }

    [Fact]
    public void A_run_stands_at_a_boundary_once_started_and_while_no_task_of_it_is_in_flight()
    {
        Assert.False(Fit(Started(1)).AtBoundary(2));                       // no such run
        Assert.False(Fit(new RunState(1, Cfg), Started(2)).AtBoundary(1)); // not started yet
        Assert.True(Fit(Started(1)).AtBoundary(1));
        Assert.True(Fit(Stopped(1)).AtBoundary(1));

        var (scheduled, _) = Fit(Started(1)).Schedule();
        Assert.False(scheduled.AtBoundary(1));
        Assert.True(scheduled.DeviceFreed("cpu").WithRun(AfterFirstChunk(1)).AtBoundary(1));
    }

    [Fact]
    public void Operations_are_not_ready_while_their_run_has_a_task_in_flight()
    {
        var (scheduled, assignments) = Fit(Started(1)).Schedule();
        Assert.Single(assignments);
        var fit = scheduled.Queue(Pending(1, ControlOp.Stop(1)));

        var (same, ready) = fit.TakeReady(1);

        Assert.Empty(ready);
        Assert.Same(fit, same);
        Assert.Single(same.Pending[1]);
        Assert.Empty(same.Applying);
    }

    [Fact]
    public void Operations_are_not_ready_while_their_run_has_not_started()
    {
        var fit = Fit(new RunState(1, Cfg)).Queue(Pending(1, ControlOp.Stop(1)));
        var (same, ready) = fit.TakeReady(1);
        Assert.Empty(ready);
        Assert.Same(fit, same);
    }

    [Fact]
    public void At_the_boundary_the_ready_operations_move_to_applying_in_order()
    {
        var (scheduled, _) = Fit(Started(1), Started(2)).Schedule();
        var fit = scheduled
            .Queue(Pending(4, ControlOp.Stop(1)))
            .Queue(Pending(5, ControlOp.Resume(1)))
            .Queue(Pending(6, ControlOp.Delete(2)))
            .DeviceFreed("cpu")
            .WithRun(AfterFirstChunk(1));

        var (next, ready) = fit.TakeReady(1);

        Assert.Equal([4, 5], ready.Select(p => p.OpId));
        Assert.False(next.Pending.ContainsKey(1));
        Assert.Equal([4, 5], next.Applying.Keys.Order());
        Assert.Equal(ControlOp.Stop(1), next.Applying[4].Op);
        Assert.Equal([6], next.Pending[2].Select(p => p.OpId)); // another run's operations stay where they are
    }

    [Fact]
    public void A_run_at_its_boundary_with_nothing_queued_has_nothing_ready()
    {
        var fit = Fit(Started(1));
        var (same, ready) = fit.TakeReady(1);
        Assert.Empty(ready);
        Assert.Same(fit, same);
    }

    [Fact]
    public void The_operations_on_a_run_list_those_applying_before_those_pending()
    {
        var (fit, _) = Fit(Stopped(1), Started(2)).Queue(Pending(2, ControlOp.Resume(1))).Queue(Pending(1, ControlOp.Delete(2))).TakeReady(1);
        fit = fit.Queue(Pending(3, ControlOp.Stop(1)));

        Assert.Equal([ControlOp.Resume(1), ControlOp.Stop(1)], fit.OpsOn(1));
        Assert.Equal([ControlOp.Delete(2)], fit.OpsOn(2));
        Assert.Empty(fit.OpsOn(3));
    }

    [Fact]
    public void Applying_operations_are_listed_by_operation_id()
    {
        var fit = Fit(Stopped(1)) with
        {
            Applying = new Dictionary<int, PendingControl>
            {
                [9] = Pending(9, ControlOp.Stop(1)),
                [2] = Pending(2, ControlOp.Resume(1)),
            }.ToImmutableDictionary(),
        };
        Assert.Equal([ControlOp.Resume(1), ControlOp.Stop(1)], fit.OpsOn(1));
    }

    [Fact]
    public void A_resolved_operation_leaves_applying()
    {
        var (fit, _) = Fit(Stopped(1)).Queue(Pending(1, ControlOp.Resume(1))).Queue(Pending(2, ControlOp.Delete(1))).TakeReady(1);
        fit = fit.Resolved(1);
        Assert.Equal([2], fit.Applying.Keys);
        Assert.Equal([ControlOp.Delete(1)], fit.OpsOn(1));
    }

    [Fact]
    public void Scheduling_passes_over_runs_with_operations_pending_or_applying_and_runs_held_but_schedules_the_others()
    {
        var (applying, _) = Fit(["d0", "d1", "d2", "d3"], Started(1), Started(2), Started(3), Started(4))
            .Queue(Pending(1, ControlOp.Stop(2)))
            .TakeReady(2);
        var fit = applying.Queue(Pending(2, ControlOp.Stop(1))) with { Held = [3] };

        var (next, assignments) = fit.Schedule();

        // Runs 1 and 2 wait for their operations, run 3 is held: run 4 goes, with its share of the 4 devices among the
        // 3 runs that compete for them (the extra device goes to it).
        var only = Assert.Single(assignments);
        Assert.Equal(new Assignment("d0", RunTask.Train(4, 0, 0), ["d1"]).Devices, only.Devices);
        Assert.Equal(RunTask.Train(4, 0, 0), only.Task);
        Assert.Equal([4], next.InFlight.Keys);
        Assert.Equal(["d0", "d1"], next.Busy.Keys.Order());
    }

    [Fact]
    public void A_run_is_scheduled_again_once_its_operation_is_resolved_and_its_hold_lifted()
    {
        var (fit, _) = Fit(Started(1)).Queue(Pending(1, ControlOp.Stop(1))).Queue(Pending(2, ControlOp.Resume(1))).TakeReady(1);
        Assert.Empty(fit.Schedule().Assignments);
        fit = fit.Resolved(1).Resolved(2) with { Held = [1] };
        Assert.Empty(fit.Schedule().Assignments);
        fit = fit with { Held = [] };
        Assert.Equal(RunTask.Train(1, 0, 0), Assert.Single(fit.Schedule().Assignments).Task);
    }

    [Fact]
    public void A_fit_whose_runs_have_all_ended_is_not_done_while_operations_are_pending_or_applying()
    {
        var ended = Fit(Stopped(1), Stopped(2));
        Assert.True(ended.IsDone);

        var pending = ended.Queue(Pending(1, ControlOp.Resume(1)));
        Assert.False(pending.IsDone);

        var (applying, ready) = pending.TakeReady(1);
        Assert.Single(ready);
        Assert.False(applying.IsDone);

        Assert.True(applying.Resolved(1).IsDone);
    }
}
