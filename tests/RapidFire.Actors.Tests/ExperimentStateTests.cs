using RapidFire.Actors.Control;
using RapidFire.Actors.Experiment;
using RapidFire.Spec;
using static RapidFire.Actors.Experiment.ExperimentProtocol;

namespace RapidFire.Actors.Tests;

/// <summary>The experiment's journaled state folded from its events: its fits, their runs and the IC log.</summary>
public class ExperimentStateTests
{
    private static readonly Config Cfg = Config.FromJson("""{"hidden":8,"epochs":2,"batch_size":16,"optimizer":{"name":"Adam","args":{"lr":0.01}}}""");
    private static readonly Config CloneCfg = Config.FromJson("""{"hidden":8,"epochs":2,"batch_size":16,"optimizer":{"name":"Adam","args":{"lr":0.002}}}""");
    private static readonly DateTime T0 = new(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc);
    private static readonly IReadOnlyDictionary<string, string> LrChange = new Dictionary<string, string> { ["optimizer.args.lr"] = "0.002" };

    private static FitDefinition Definition(int fitId) =>
        new(fitId, SpecReference.FromType(typeof(TinySpec)), "{}", "/data", new RuntimeSettings());

    /// <summary>An experiment with one fit of runs 1 and 2.</summary>
    private static ExperimentState Experiment() => new ExperimentState()
        .Apply(new ExperimentCreated("exp", T0))
        .Apply(new FitStarted(Definition(1)))
        .Apply(new RunsAdded(1, [new RunDefinition(1, Cfg), new RunDefinition(2, Cfg)]));

    private static ExperimentState Apply(ExperimentState state, params IExperimentEvent[] events) => events.Aggregate(state, (s, e) => s.Apply(e));

    private static RunDefinition Clone(int runId, int parent = 1, bool warm = false) => new(runId, CloneCfg, parent, warm);

    private static IEnumerable<int> RunsOf(ExperimentState state, int fitId = 1) =>
        state.Fits.Single(f => f.Definition.FitId == fitId).Runs.Select(r => r.RunId);

    [Fact]
    public void A_requested_operation_joins_the_ic_log_as_pending()
    {
        var op = ControlOp.Stop(1);
        var state = Experiment().Apply(new ControlRequested(1, T0, op, 1, null));

        Assert.Equal(new ControlRecord(1, T0, op, ControlStatus.Pending, "pending", null, null), Assert.Single(state.Controls));
        Assert.Equal([1, 2], RunsOf(state));
        Assert.Equal(2, state.NextOpId);
        Assert.Equal(3, state.NextRunId);
    }

    [Fact]
    public void A_requested_clone_joins_its_fit_with_its_new_run_and_the_next_run_id_moves_on()
    {
        var op = ControlOp.CloneOf(1, LrChange, warm: true);
        var clone = Clone(3, warm: true);
        var state = Experiment().Apply(new ControlRequested(1, T0, op, 1, clone));

        Assert.Equal([1, 2, 3], RunsOf(state));
        Assert.Same(clone, state.Fits[0].Runs[^1]);
        Assert.Equal(3, Assert.Single(state.Controls).NewRunId);
        Assert.Equal(4, state.NextRunId);
        Assert.Equal(2, state.NextOpId);
    }

    [Fact]
    public void A_clone_joins_the_fit_its_request_names()
    {
        var state = Apply(Experiment(),
            new FitEnded(1, false),
            new FitStarted(Definition(2)),
            new RunsAdded(2, [new RunDefinition(3, Cfg)]),
            new ControlRequested(1, T0, ControlOp.CloneOf(3, LrChange), 2, Clone(4, parent: 3)));

        Assert.Equal([1, 2], RunsOf(state, fitId: 1));
        Assert.Equal([3, 4], RunsOf(state, fitId: 2));
        Assert.Same(state.Fits[1], state.Unfinished);
    }

    [Fact]
    public void A_resolved_operation_takes_its_status_outcome_and_time()
    {
        var op = ControlOp.Stop(1);
        var resolvedAt = T0.AddSeconds(30);
        var state = Apply(Experiment(),
            new ControlRequested(1, T0, op, 1, null),
            new ControlResolved(1, resolvedAt, ControlStatus.Applied, "run 1 stopped after 3 chunks (0 epochs); resume continues from there"));

        Assert.Equal(new ControlRecord(1, T0, op, ControlStatus.Applied, "run 1 stopped after 3 chunks (0 epochs); resume continues from there", null, resolvedAt),
            Assert.Single(state.Controls));
        Assert.Empty(state.Unresolved);
    }

    [Fact]
    public void An_applied_clone_stays_in_its_fit()
    {
        var state = Apply(Experiment(),
            new ControlRequested(1, T0, ControlOp.CloneOf(1, LrChange), 1, Clone(3)),
            new ControlResolved(1, T0, ControlStatus.Applied, "run 3 created from run 1: it trains from scratch"));
        Assert.Equal([1, 2, 3], RunsOf(state));
    }

    [Fact]
    public void A_dropped_clone_leaves_its_fit_and_its_record_keeps_the_run_id()
    {
        var state = Apply(Experiment(),
            new ControlRequested(1, T0, ControlOp.CloneOf(1, LrChange, warm: true), 1, Clone(3, warm: true)),
            new ControlResolved(1, T0, ControlStatus.Dropped, "the fit was cancelled before the operation took effect"));

        Assert.Equal([1, 2], RunsOf(state));
        var record = Assert.Single(state.Controls);
        Assert.Equal((ControlStatus.Dropped, 3), (record.Status, record.NewRunId));
    }

    [Fact]
    public void A_dropped_operation_that_is_not_a_clone_leaves_the_runs_alone()
    {
        var state = Apply(Experiment(),
            new ControlRequested(1, T0, ControlOp.Stop(2), 1, null),
            new ControlResolved(1, T0, ControlStatus.Dropped, "run 2 is Failed (failure): the operation no longer applies"));
        Assert.Equal([1, 2], RunsOf(state));
    }

    [Fact]
    public void A_dropped_clones_run_id_is_not_handed_out_again()
    {
        var state = Apply(Experiment(),
            new ControlRequested(1, T0, ControlOp.CloneOf(1, LrChange, warm: true), 1, Clone(3, warm: true)),
            new ControlResolved(1, T0, ControlStatus.Dropped, "run 1 has failed (boom): its trained state is not trusted"));
        Assert.Equal(4, state.NextRunId);
    }

    [Fact]
    public void A_resolution_of_an_unknown_operation_changes_nothing()
    {
        var state = Experiment().Apply(new ControlRequested(1, T0, ControlOp.Stop(1), 1, null));
        Assert.Same(state, state.Apply(new ControlResolved(7, T0, ControlStatus.Applied, "?")));
    }

    [Fact]
    public void Every_operation_takes_the_next_op_id_rejected_ones_too()
    {
        var state = Experiment();
        Assert.Equal(1, state.NextOpId);
        state = Apply(state,
            new ControlRequested(1, T0, ControlOp.Resume(1), 1, null),
            new ControlResolved(1, T0, ControlStatus.Rejected, "run 1 is ongoing, not stopped: only a stopped run can be resumed"));
        Assert.Equal(2, state.NextOpId);
        state = state.Apply(new ControlRequested(2, T0, ControlOp.Stop(1), 1, null));
        Assert.Equal(3, state.NextOpId);
    }

    [Fact]
    public void Unresolved_lists_only_the_operations_still_pending_in_order()
    {
        var state = Apply(Experiment(),
            new ControlRequested(1, T0, ControlOp.Resume(1), 1, null),
            new ControlResolved(1, T0, ControlStatus.Rejected, "run 1 is ongoing, not stopped: only a stopped run can be resumed"),
            new ControlRequested(2, T0, ControlOp.Stop(1), 1, null),
            new ControlRequested(3, T0, ControlOp.CloneOf(2, LrChange), 1, Clone(3, parent: 2)),
            new ControlRequested(4, T0, ControlOp.Delete(2), 1, null),
            new ControlResolved(2, T0, ControlStatus.Applied, "run 1 stopped after 1 chunks (0 epochs); resume continues from there"),
            new ControlResolved(4, T0, ControlStatus.Dropped, "run 2 is Completed (epochs): the operation no longer applies"));

        Assert.Equal([3], state.Unresolved.Select(c => c.OpId));
        Assert.Equal([1, 2, 3, 4], state.Controls.Select(c => c.OpId));
        Assert.Equal([ControlStatus.Rejected, ControlStatus.Applied, ControlStatus.Pending, ControlStatus.Dropped], state.Controls.Select(c => c.Status));
    }
}
