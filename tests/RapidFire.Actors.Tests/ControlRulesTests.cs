using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Actors.Tests;

/// <summary>Which IC operations a run accepts and the knobs of a clone: pure functions, tested without actors.</summary>
public class ControlRulesTests
{
    private static readonly Config Cfg = Config.FromJson(
        """{"hidden":8,"model":"mlp","seed":1,"epochs":2,"batch_size":16,"optimizer":{"name":"Adam","args":{"lr":0.001}},"named_metrics":["top1_accuracy"]}""");

    private static readonly int[] Known = [3, 1, 2];
    private static readonly RunFailure Boom = new("RowPrep", "boom", "train", 1, 1, 7);

    private static RunState New() => new(1, Cfg);

    private static RunState Ongoing() => New().Apply(new RunStarted(4, true));

    private static RunState Ended(RunStatus status, string endedBy, RunFailure? failure = null) =>
        Ongoing().Apply(new RunEnded(status, endedBy, failure));

    private static RunState Stopped() => Ended(RunStatus.Stopped, EndReason.User);

    private static RunState Failed() => Ended(RunStatus.Failed, EndReason.Failure, Boom);

    private static RunState Completed() => Ended(RunStatus.Completed, EndReason.Epochs);

    private static RunState Deleted() => Ended(RunStatus.Deleted, EndReason.User);

    private static string? Refusal(ControlOp op, RunState? run, params ControlOp[] pending) =>
        ControlRules.Refusal(op, run, pending, Known);

    private static ControlOp Clone(bool warm = false) => ControlOp.CloneOf(1, new Dictionary<string, string>(), warm);

    public static TheoryData<string> EveryOp => ["stop", "resume", "delete", "clone", "clone-warm"];

    private static ControlOp Op(string name) => name switch
    {
        "stop" => ControlOp.Stop(1),
        "resume" => ControlOp.Resume(1),
        "delete" => ControlOp.Delete(1),
        "clone" => Clone(),
        "clone-warm" => Clone(warm: true),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    private static Config CloneOf(params (string Path, string Value)[] changes) =>
        ControlRules.CloneConfig(Cfg, changes.ToDictionary(c => c.Path, c => c.Value));

    private static ConfigException Refused(params (string Path, string Value)[] changes) =>
        Assert.Throws<ConfigException>(() => CloneOf(changes));

    // ---- Refusal ----

    [Fact]
    public void An_operation_on_an_unknown_run_is_refused_listing_the_fits_runs_in_order()
    {
        Assert.Equal("there is no run 7 in this fit (its runs are 1, 2, 3)", ControlRules.Refusal(ControlOp.Stop(7), null, [], Known));
    }

    [Theory]
    [MemberData(nameof(EveryOp))]
    public void Every_operation_on_a_completed_run_is_refused(string name)
    {
        var op = Op(name);
        Assert.Equal($"run 1 has completed (epochs): {name} applies only to runs that have not completed", Refusal(op, Completed()));
    }

    [Theory]
    [MemberData(nameof(EveryOp))]
    public void Every_operation_on_a_deleted_run_is_refused(string name)
    {
        Assert.Equal($"run 1 was deleted: {name} applies only to runs that are not deleted", Refusal(Op(name), Deleted()));
    }

    [Theory]
    [MemberData(nameof(EveryOp))]
    public void Every_operation_after_a_pending_delete_is_refused_as_being_deleted(string name)
    {
        Assert.Equal($"run 1 is being deleted: {name} applies only to runs that are not deleted",
            Refusal(Op(name), Ongoing(), ControlOp.Delete(1)));
    }

    [Fact]
    public void A_stop_of_a_new_or_ongoing_run_is_accepted()
    {
        Assert.Null(Refusal(ControlOp.Stop(1), New()));
        Assert.Null(Refusal(ControlOp.Stop(1), Ongoing()));
    }

    [Fact]
    public void A_stop_of_a_stopped_run_is_refused()
    {
        Assert.Equal("run 1 is already stopped", Refusal(ControlOp.Stop(1), Stopped()));
    }

    [Fact]
    public void A_second_stop_while_the_first_waits_is_refused_because_pending_operations_count_as_done()
    {
        Assert.Equal("run 1 is already stopped (its stop waits for its chunk to end)", Refusal(ControlOp.Stop(1), Ongoing(), ControlOp.Stop(1)));
    }

    [Fact]
    public void A_stop_after_a_pending_resume_of_a_stopped_run_is_accepted()
    {
        Assert.Null(Refusal(ControlOp.Stop(1), Stopped(), ControlOp.Resume(1)));
    }

    [Fact]
    public void A_stop_of_a_failed_run_is_refused_with_its_failure()
    {
        Assert.Equal("run 1 has failed (MLSpec.RowPrep (train, epoch 1, chunk 1, row id 7): boom): it is not training",
            Refusal(ControlOp.Stop(1), Failed()));
    }

    [Fact]
    public void A_resume_of_a_run_that_is_not_stopped_is_refused_saying_where_it_is()
    {
        Assert.Equal("run 1 is ongoing, not stopped: only a stopped run can be resumed", Refusal(ControlOp.Resume(1), Ongoing()));
        Assert.Equal("run 1 is starting, not stopped: only a stopped run can be resumed", Refusal(ControlOp.Resume(1), New()));
        Assert.Equal("run 1 is failed, not stopped: only a stopped run can be resumed", Refusal(ControlOp.Resume(1), Failed()));
    }

    [Fact]
    public void A_resume_of_a_stopped_run_is_accepted()
    {
        Assert.Null(Refusal(ControlOp.Resume(1), Stopped()));
        Assert.Null(Refusal(ControlOp.Resume(1), Ended(RunStatus.Stopped, "sha")));
    }

    [Fact]
    public void A_resume_after_a_pending_stop_is_accepted_and_a_second_resume_is_not()
    {
        Assert.Null(Refusal(ControlOp.Resume(1), Ongoing(), ControlOp.Stop(1)));
        Assert.Equal("run 1 is ongoing, not stopped: only a stopped run can be resumed",
            Refusal(ControlOp.Resume(1), Ongoing(), ControlOp.Stop(1), ControlOp.Resume(1)));
    }

    [Fact]
    public void A_delete_is_accepted_for_new_ongoing_stopped_and_failed_runs()
    {
        Assert.All(new[] { New(), Ongoing(), Stopped(), Failed() }, run => Assert.Null(Refusal(ControlOp.Delete(1), run)));
    }

    [Fact]
    public void A_clone_is_accepted_for_new_ongoing_and_stopped_runs_warm_or_not()
    {
        Assert.All(new[] { New(), Ongoing(), Stopped() }, run =>
        {
            Assert.Null(Refusal(Clone(), run));
            Assert.Null(Refusal(Clone(warm: true), run));
        });
    }

    [Fact]
    public void A_warm_clone_of_a_failed_run_is_refused_and_a_cold_clone_is_accepted()
    {
        Assert.Equal("run 1 has failed (MLSpec.RowPrep (train, epoch 1, chunk 1, row id 7): boom): its trained state is not trusted; " +
                     "clone it without a warm start", Refusal(Clone(warm: true), Failed()));
        Assert.Null(Refusal(Clone(), Failed()));
    }

    // ---- CloneConfig ----

    [Fact]
    public void A_clone_takes_a_new_learning_rate_by_its_full_path_or_its_short_alias()
    {
        Assert.Equal(0.01, CloneOf(("optimizer.args.lr", "0.01")).Optimizer.Args["lr"]);
        Assert.Equal(0.01, CloneOf(("optimizer.lr", "0.01")).Optimizer.Args["lr"]);
        Assert.Equal(CloneOf(("optimizer.args.lr", "0.01")), CloneOf(("optimizer.lr", "0.01")));
    }

    [Fact]
    public void A_clone_keeps_the_parents_other_knobs_in_order()
    {
        var clone = CloneOf(("optimizer.lr", "0.01"));
        Assert.Equal(Cfg.ToJson().Replace("0.001", "0.01", StringComparison.Ordinal), clone.ToJson());
    }

    [Fact]
    public void A_clone_refuses_a_number_too_large_to_be_finite()
    {
        Assert.Equal("optimizer.args.lr", Assert.Single(Refused(("optimizer.lr", "1e999")).Errors).Path);
    }

    [Fact]
    public void A_whole_number_user_knob_becomes_a_long()
    {
        var hidden = CloneOf(("hidden", "64"))["hidden"];
        Assert.IsType<long>(hidden);
        Assert.Equal(64L, hidden);
    }

    [Fact]
    public void A_json_string_and_bare_text_both_become_the_string()
    {
        Assert.Equal("cnn", CloneOf(("model", "\"cnn\""))["model"]);
        Assert.Equal("cnn", CloneOf(("model", "cnn"))["model"]);
    }

    [Fact]
    public void A_value_of_another_kind_than_the_parents_is_refused_naming_both()
    {
        var error = Assert.Single(Refused(("hidden", "wide")).Errors);
        Assert.Equal(("hidden", "is a number in the run (8); got a string \"wide\""), (error.Path, error.Message));
        Assert.Equal(16.5, CloneOf(("hidden", "16.5"))["hidden"]); // a real for a whole number is still a number
    }

    [Fact]
    public void A_new_optimizer_argument_may_be_added()
    {
        var clone = CloneOf(("optimizer.args.weight_decay", "0.1"));
        Assert.Equal(0.1, clone.Optimizer.Args["weight_decay"]);
        Assert.Equal(0.001, clone.Optimizer.Args["lr"]);
    }

    [Fact]
    public void An_unknown_knob_is_refused_listing_the_runs_knobs()
    {
        var error = Assert.Single(Refused(("depth", "3")).Errors);
        Assert.Equal("depth", error.Path);
        Assert.Equal("the run has no knob 'depth'; its knobs are: hidden, model, seed, epochs, batch_size, optimizer.name, optimizer.args.lr, named_metrics",
            error.Message);
    }

    [Fact]
    public void Every_fault_of_a_clone_is_reported_at_once_at_its_path()
    {
        var errors = Refused(("depth", "3"), ("optimizer.args", "1"), ("hidden..x", "2")).Errors;
        Assert.Equal(["depth", "optimizer.args", "hidden..x"], errors.Select(e => e.Path));
        Assert.StartsWith("the run has no knob 'optimizer.args'", errors[1].Message);
        Assert.StartsWith("is not a knob path", errors[2].Message);
    }

    [Fact]
    public void Epochs_or_batch_size_below_one_are_refused_together()
    {
        var errors = Refused(("epochs", "0"), ("batch_size", "0")).Errors;
        Assert.Equal(
            [new ConfigError("epochs", "must be at least 1, got 0"), new ConfigError("batch_size", "must be at least 1, got 0")],
            errors);
    }

    [Fact]
    public void Epochs_that_are_not_a_whole_number_are_refused_at_epochs()
    {
        Assert.Equal("epochs", Assert.Single(Refused(("epochs", "1.5")).Errors).Path);
        Assert.Equal("epochs", Assert.Single(Refused(("epochs", "two")).Errors).Path);
    }

    [Fact]
    public void An_unknown_optimizer_name_is_refused_at_optimizer_name_listing_the_known_ones()
    {
        var error = Assert.Single(Refused(("optimizer.name", "Adamm")).Errors);
        Assert.Equal("optimizer.name", error.Path);
        Assert.StartsWith("unknown optimizer 'Adamm'; known optimizers: ", error.Message);
        Assert.Contains("Adam", error.Message.Split(": ")[1].Split(", "));
    }

    [Fact]
    public void An_argument_the_optimizer_does_not_take_is_refused_after_the_paths_are_checked()
    {
        var error = Assert.Single(Refused(("optimizer.args.momentumm", "0.9")).Errors);
        Assert.StartsWith("optimizer.args", error.Path);
    }

    [Fact]
    public void A_clone_leaves_its_parent_unchanged()
    {
        var before = Cfg.ToJson();
        CloneOf(("optimizer.args.lr", "0.5"), ("optimizer.args.weight_decay", "0.1"), ("hidden", "64"), ("model", "cnn"));
        Assert.Equal(before, Cfg.ToJson());
        Assert.Equal(0.001, Cfg.Optimizer.Args["lr"]);
        Assert.False(Cfg.Optimizer.Args.ContainsKey("weight_decay"));
    }

    [Fact]
    public void A_clone_without_changes_equals_its_parent()
    {
        Assert.Equal(Cfg, ControlRules.CloneConfig(Cfg, new Dictionary<string, string>()));
    }

    // ---- WarmRefusal ----

    [Fact]
    public void A_warm_clone_with_another_batch_size_is_refused_naming_both_values()
    {
        var refusal = ControlRules.WarmRefusal(1, Cfg, CloneOf(("batch_size", "32")));
        Assert.Equal("a warm clone continues run 1's epoch from its next chunk, and batch_size (16 → 32) cuts the epoch into other " +
                     "minibatches; keep batch_size or clone without a warm start", refusal);
    }

    [Fact]
    public void A_warm_clone_with_another_seed_is_refused_naming_both_values()
    {
        var refusal = ControlRules.WarmRefusal(1, Cfg, CloneOf(("seed", "2")));
        Assert.Equal("a warm clone continues run 1's epoch in the same row order, and seed (1 → 2) changes that order; " +
                     "keep seed or clone without a warm start", refusal);
    }

    [Fact]
    public void A_warm_clone_with_another_optimizer_is_refused_naming_both()
    {
        var refusal = ControlRules.WarmRefusal(1, Cfg, CloneOf(("optimizer.name", "SGD")));
        Assert.Equal("a warm start copies run 1's Adam optimizer state, which SGD cannot take; " +
                     "keep the optimizer (its arguments may change) or clone without a warm start", refusal);
    }

    [Fact]
    public void A_warm_clone_may_change_the_learning_rate_or_the_epochs()
    {
        Assert.Null(ControlRules.WarmRefusal(1, Cfg, CloneOf(("optimizer.lr", "0.01"))));
        Assert.Null(ControlRules.WarmRefusal(1, Cfg, CloneOf(("epochs", "5"))));
        Assert.Null(ControlRules.WarmRefusal(1, Cfg, Cfg));
    }
}
