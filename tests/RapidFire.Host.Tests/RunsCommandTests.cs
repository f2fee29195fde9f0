using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Host.Cli;
using static RapidFire.Host.Tests.RecordingExperimentControl;

namespace RapidFire.Host.Tests;

public sealed class RunsCommandTests : IAsyncLifetime
{
    private readonly string dir = Directory.CreateTempSubdirectory("rf-runs-").FullName;
    private readonly RecordingExperimentControl control;
    private ApiServer? server;

    public RunsCommandTests()
    {
        control = new RecordingExperimentControl(Path.Combine(dir, "exp"));
        Directory.CreateDirectory(control.Path);
        control.Runs.Add(InSecondEpoch(1, ConfigWith(64, 0.001)));
        control.Runs.Add(Ended(InSecondEpoch(2, ConfigWith(128, 0.001)), RunStatus.Failed, EndReason.Failure,
            new RunFailure("ComputeForward", "shape mismatch [3, 4]", "train", 2, 1)));
        control.Runs.Add(Ended(new RunState(3, ConfigWith(32, 0.001)), RunStatus.Deleted, "deleted"));
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (server is not null) await server.DisposeAsync();
        Directory.Delete(dir, recursive: true);
    }

    private async Task Serve() => server = await ApiServer.StartAsync(control);

    private (int Code, string Out, string Err) Runs(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = RapidFireCli.Run(["runs", .. args, "--experiment", "exp", "--dir", dir], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public async Task Runs_list_prints_the_live_table_with_the_knobs_that_vary_and_the_failures()
    {
        await Serve();

        var (code, output, errors) = Runs("list");

        Assert.True(code == 0, errors);
        Assert.StartsWith($"experiment exp: fitting, 2 runs ({server!.Url})", output);
        Assert.Contains("hidden", output);
        Assert.DoesNotContain("optimizer.lr", output); // the same in every run: no column
        Assert.Contains("val accuracy", output);
        var one = Lines(output).Single(l => l.StartsWith("│ 1 ", StringComparison.Ordinal));
        Assert.Contains("Ongoing", one);
        Assert.Contains("epoch 2/3 chunk 2/4", one);
        Assert.Contains("64", one);
        Assert.Contains("0.4", one);
        Assert.Contains("0.8", one);
        Assert.Contains(Lines(output), l => l.StartsWith("│ 2 ", StringComparison.Ordinal) && l.Contains("Failed"));
        Assert.DoesNotContain(Lines(output), l => l.StartsWith("│ 3 ", StringComparison.Ordinal));
        Assert.Contains("run 2: MLSpec.ComputeForward (train, epoch 2, chunk 1): shape mismatch [3, 4]", output);
    }

    [Fact]
    public async Task Runs_list_all_shows_the_deleted_runs_too()
    {
        await Serve();

        var (code, output, _) = Runs("list", "--all");

        Assert.Equal(0, code);
        Assert.Contains(Lines(output), l => l.StartsWith("│ 3 ", StringComparison.Ordinal) && l.Contains("Deleted"));
    }

    [Fact]
    public async Task Runs_stop_prints_the_outcome_line_and_exits_0()
    {
        await Serve();

        var (code, output, errors) = Runs("stop", "2");

        Assert.True(code == 0, errors);
        Assert.Equal("op 1: stop run 2: pending — takes effect at run 2's next chunk boundary", output.Trim());
        Assert.Equal([ControlOp.Stop(2)], control.Ops);
    }

    [Fact]
    public async Task Runs_resume_and_delete_reach_the_experiment()
    {
        await Serve();

        Assert.Equal(0, Runs("resume", "1").Code);
        Assert.Equal(0, Runs("delete", "1").Code);

        Assert.Equal([ControlOp.Resume(1), ControlOp.Delete(1)], control.Ops);
    }

    [Fact]
    public async Task A_rejected_operation_exits_1_with_its_reason()
    {
        await Serve();
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Rejected, "run 2 has failed: it cannot be resumed");

        var (code, output, errors) = Runs("resume", "2");

        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Empty(output);
        Assert.Equal("op 1: resume run 2: rejected — run 2 has failed: it cannot be resumed", errors.Trim());
    }

    [Fact]
    public async Task An_operation_on_an_unknown_run_exits_1_naming_the_run()
    {
        await Serve();

        var (code, _, errors) = Runs("stop", "42");

        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Equal("error: there is no run 42 in experiment exp", errors.Trim());
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task Runs_clone_sends_every_set_and_the_warm_flag_and_prints_the_new_run()
    {
        await Serve();
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Applied, "cloned from run 1", NewRunId: 4);

        var (code, output, errors) = Runs("clone", "1", "--set", "optimizer.args.lr=0.01", "--set", "model_type=cnn", "--set", "note=a=b", "--warm");

        Assert.True(code == 0, errors);
        Assert.Equal("op 1: clone-warm run 1: applied — cloned from run 1 (new run 4)", output.Trim());
        var op = Assert.Single(control.Ops);
        Assert.True(op.Warm);
        Assert.Equal(new Dictionary<string, string> { ["optimizer.args.lr"] = "0.01", ["model_type"] = "cnn", ["note"] = "a=b" }, op.Changes);
    }

    [Theory]
    [InlineData("lr0.01")]
    [InlineData("=0.01")]
    public async Task A_set_without_a_knob_and_an_equals_sign_is_an_error_naming_it(string assignment)
    {
        await Serve();

        var (code, _, errors) = Runs("clone", "1", "--set", assignment);

        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains($"--set '{assignment}' must be knob=value", errors);
        Assert.Empty(control.Ops);
    }

    [Fact]
    public void Operations_without_a_running_host_exit_2_saying_how_to_start_it()
    {
        foreach (var args in new[] { new[] { "stop", "1" }, ["clone", "1", "--set", "hidden=8"] })
        {
            var (code, _, errors) = Runs(args);

            Assert.Equal(RunsCommand.NotRunning, code);
            Assert.Equal($"error: experiment exp is not running in {dir}; start it with `rapidfire fit` or `rapidfire resume`", errors.Trim());
        }
    }

    [Fact]
    public void The_log_of_an_experiment_that_is_not_running_is_read_from_its_folder()
    {
        var (code, output, _) = Runs("log");

        Assert.Equal(RapidFireCli.Ok, code);
        Assert.Contains("experiment exp is not running: its IC log", output);
        Assert.Contains("no IC operations yet", output);
    }

    [Fact]
    public void An_operation_not_yet_taken_up_is_logged_as_pending_once()
    {
        new ExperimentFiles(control.Path).Control(new ControlRecord(1, DateTime.UtcNow, ControlOp.Stop(1), ControlStatus.Pending, "pending", null, null));

        var (code, output, _) = Runs("log");

        Assert.Equal(RapidFireCli.Ok, code);
        Assert.Contains(Lines(output), l => l.Contains("stop") && l.Contains("pending"));
        Assert.DoesNotContain("pending: pending", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stale_host_json_counts_as_not_running()
    {
        await Serve();
        var url = server!.Url;
        await server.DisposeAsync();
        server = null;
        HostFile.Write(control.Path, new HostFile(url, int.MaxValue, "exp", DateTime.UtcNow));

        var (code, _, errors) = Runs("stop", "1");

        Assert.Equal(RunsCommand.NotRunning, code);
        Assert.Contains("experiment exp is not running", errors);
    }

    [Fact]
    public void A_missing_experiment_exits_2_naming_its_folder()
    {
        var stderr = new StringWriter();

        var code = RapidFireCli.Run(["runs", "list", "--experiment", "nope", "--dir", dir], new StringWriter(), stderr);

        Assert.Equal(RunsCommand.NotRunning, code);
        Assert.Equal($"error: there is no experiment nope in {dir} (no folder {Path.Combine(dir, "nope")})", stderr.ToString().Trim());
    }

    [Fact]
    public void Runs_list_of_a_finished_experiment_prints_the_final_table_of_its_runs_csv()
    {
        File.WriteAllText(Path.Combine(control.Path, "runs.csv"), """
            run_id,status,ended_by,epochs_done,hidden,epochs,optimizer.name,optimizer.args.lr,val_loss,val_accuracy,error
            2,Failed,failure,1,128,3,Adam,0.001,0.61,0.79,MLSpec.ComputeForward (train): shape mismatch
            1,Completed,epochs,3,64,3,Adam,0.001,0.412345678,0.9,
            3,Deleted,deleted,0,32,3,Adam,0.001,,,
            """);

        var (code, output, errors) = Runs("list");

        Assert.True(code == 0, errors);
        Assert.StartsWith($"experiment exp is not running: the final table of its last fit ({Path.Combine(control.Path, "runs.csv")})", output);
        Assert.Contains("hidden", output);
        Assert.DoesNotContain("optimizer.lr", output);
        Assert.Contains("val accuracy", output);
        var lines = Lines(output);
        var one = Array.FindIndex(lines, l => l.StartsWith("│ 1 ", StringComparison.Ordinal));
        Assert.True(one >= 0 && one < Array.FindIndex(lines, l => l.StartsWith("│ 2 ", StringComparison.Ordinal)), output); // in run order
        Assert.Contains("Completed", lines[one]);
        Assert.Contains("(epochs)", lines[one]);
        Assert.Contains("0.4123", lines[one]);
        Assert.DoesNotContain(lines, l => l.StartsWith("│ 3 ", StringComparison.Ordinal));
        Assert.Contains("run 2: MLSpec.ComputeForward (train): shape mismatch", output);
        Assert.Contains(Lines(Runs("list", "--all").Out), l => l.StartsWith("│ 3 ", StringComparison.Ordinal) && l.Contains("Deleted"));
    }

    [Fact]
    public void Runs_list_of_an_experiment_with_no_runs_csv_and_no_host_exits_2()
    {
        var (code, _, errors) = Runs("list");

        Assert.Equal(RunsCommand.NotRunning, code);
        Assert.Contains("experiment exp is not running and has no runs.csv yet", errors);
    }

    [Fact]
    public async Task Runs_log_prints_each_operation_with_its_time_arguments_and_outcome()
    {
        await Serve();
        Runs("stop", "1");
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Applied, "cloned", NewRunId: 4);
        Runs("clone", "1", "--set", "hidden=8");

        var (code, output, errors) = Runs("log");

        Assert.True(code == 0, errors);
        var lines = Lines(output);
        Assert.Contains(lines, l => l.Contains("2025-01-02 03:04:01") && l.Contains("stop") && l.Contains("pending: takes effect at run 1's next chunk boundary"));
        Assert.Contains(lines, l => l.Contains("clone") && l.Contains("hidden=8") && l.Contains("applied: cloned (new run 4)"));
    }

    [Fact]
    public async Task Runs_log_of_an_experiment_without_operations_says_so()
    {
        await Serve();

        var (code, output, _) = Runs("log");

        Assert.Equal(0, code);
        Assert.Equal("no IC operations yet", output.Trim());
    }

    [Fact]
    public void A_run_id_that_is_not_a_number_is_a_usage_error()
    {
        var (code, _, errors) = Runs("stop", "two");

        Assert.NotEqual(0, code);
        Assert.Contains("two", errors);
    }
}
