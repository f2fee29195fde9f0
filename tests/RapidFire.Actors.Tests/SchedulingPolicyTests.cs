using RapidFire.Actors.Scheduling;

namespace RapidFire.Actors.Tests;

public class SchedulingPolicyTests
{
    /// <summary>Simulates K runs x C chunks x E epochs on D devices, all tasks of a round finishing together.</summary>
    private static List<List<RunTask>> Simulate(int runs, int chunks, int epochs, int devices)
    {
        var progress = Enumerable.Range(1, runs).ToDictionary(r => r, r => (Epochs: 0, Chunks: 0));
        var deviceIds = Enumerable.Range(0, devices).Select(d => $"cpu-{d}").ToList();
        var rounds = new List<List<RunTask>>();
        while (progress.Values.Any(p => p.Epochs < epochs))
        {
            var snapshot = progress.Select(kv => new RunProgress(kv.Key, kv.Value.Epochs, kv.Value.Chunks,
                kv.Value.Epochs < epochs ? RunTask.Train(kv.Key, kv.Value.Epochs, kv.Value.Chunks) : null));
            var assigned = SchedulingPolicy.Assign(snapshot, deviceIds, new HashSet<int>(), devices, progress.Values.Count(p => p.Epochs < epochs))
                .Select(a => a.Task).ToList();
            rounds.Add(assigned);
            foreach (var task in assigned)
                progress[task.RunId] = task.Chunk + 1 == chunks ? (task.Epoch + 1, 0) : (task.Epoch, task.Chunk + 1);
        }
        return rounds;
    }

    [Fact]
    public void On_one_device_K_runs_take_turns_chunk_by_chunk_lowest_run_first()
    {
        var order = Simulate(runs: 3, chunks: 2, epochs: 2, devices: 1).Select(r => Assert.Single(r).ToString()).ToList();
        Assert.Equal([
            "run 1 epoch 1 chunk 1", "run 2 epoch 1 chunk 1", "run 3 epoch 1 chunk 1",
            "run 1 epoch 1 chunk 2", "run 2 epoch 1 chunk 2", "run 3 epoch 1 chunk 2",
            "run 1 epoch 2 chunk 1", "run 2 epoch 2 chunk 1", "run 3 epoch 2 chunk 1",
            "run 1 epoch 2 chunk 2", "run 2 epoch 2 chunk 2", "run 3 epoch 2 chunk 2",
        ], order);
    }

    [Fact]
    public void On_cpu_2_two_runs_train_at_once_and_every_run_gets_its_first_chunk_before_any_second()
    {
        var rounds = Simulate(runs: 4, chunks: 3, epochs: 1, devices: 2);
        Assert.Equal(6, rounds.Count);
        Assert.All(rounds, round => Assert.Equal(2, round.Count));
        Assert.Equal(["run 1 epoch 1 chunk 1", "run 2 epoch 1 chunk 1"], rounds[0].Select(t => t.ToString()));
        Assert.Equal(["run 3 epoch 1 chunk 1", "run 4 epoch 1 chunk 1"], rounds[1].Select(t => t.ToString()));
        Assert.Equal(["run 1 epoch 1 chunk 2", "run 2 epoch 1 chunk 2"], rounds[2].Select(t => t.ToString()));
        Assert.All(rounds.SelectMany(r => r), task => Assert.Equal(1, rounds.SelectMany(r => r).Count(t => t == task)));
    }

    [Fact]
    public void Fewest_epochs_come_before_fewest_chunks_which_come_before_the_lowest_id()
    {
        var runs = new[]
        {
            new RunProgress(1, 1, 0, RunTask.Train(1, 1, 0)),
            new RunProgress(2, 0, 3, RunTask.Validate(2, 0)),
            new RunProgress(3, 0, 1, RunTask.Train(3, 0, 1)),
            new RunProgress(4, 0, 1, RunTask.Train(4, 0, 1)),
        };
        var order = SchedulingPolicy.Assign(runs, ["a", "b", "c", "d"], new HashSet<int>(), 4, 4).Select(a => a.Task.RunId);
        Assert.Equal([3, 4, 2, 1], order);
    }

    [Fact]
    public void Runs_with_a_task_in_flight_or_without_a_task_are_passed_over()
    {
        var runs = new[]
        {
            new RunProgress(1, 0, 0, RunTask.Train(1, 0, 0)),
            new RunProgress(2, 0, 0, null),
            new RunProgress(3, 0, 0, RunTask.Train(3, 0, 0)),
        };
        var assigned = SchedulingPolicy.Assign(runs, ["cpu-0", "cpu-1"], new HashSet<int> { 1 }, 2, 3);
        var only = Assert.Single(assigned);
        Assert.Equal(new Assignment("cpu-0", RunTask.Train(3, 0, 0)), only);
    }

    [Fact]
    public void An_auto_run_alone_spreads_over_every_free_device()
    {
        var assigned = SchedulingPolicy.Assign([new RunProgress(1, 0, 0, RunTask.Train(1, 0, 0))], ["cpu-0", "cpu-1", "cpu-2"], new HashSet<int>(), 3, 1);
        Assert.Equal(["cpu-0", "cpu-1", "cpu-2"], Assert.Single(assigned).Devices);
    }

    [Fact]
    public void Auto_runs_share_the_devices_the_extra_one_going_to_the_run_furthest_behind()
    {
        var runs = new[] { new RunProgress(1, 0, 2, RunTask.Train(1, 0, 2)), new RunProgress(2, 0, 1, RunTask.Train(2, 0, 1)) };
        var assigned = SchedulingPolicy.Assign(runs, ["d0", "d1", "d2"], new HashSet<int>(), 3, 2);
        Assert.Equal([(2, 2), (1, 1)], assigned.Select(a => (a.Task.RunId, a.Devices.Count)));
        Assert.Equal(["d0", "d1"], assigned[0].Devices);
        Assert.Equal(["d2"], assigned[1].Devices);
    }

    [Fact]
    public void A_run_about_to_report_back_keeps_its_claim_so_a_ready_auto_run_does_not_spread_over_its_device()
    {
        // Run 2 has a task in flight (its report has not arrived): both devices are free, but run 1 gets one of them.
        var runs = new[] { new RunProgress(1, 0, 1, RunTask.Train(1, 0, 1)), new RunProgress(2, 0, 0, RunTask.Train(2, 0, 0)) };
        var assigned = SchedulingPolicy.Assign(runs, ["cpu-0", "cpu-1"], new HashSet<int> { 2 }, 2, 2);
        Assert.Equal(["cpu-0"], Assert.Single(assigned).Devices);
    }

    [Fact]
    public void A_fixed_num_devices_run_waits_for_all_its_devices_and_nobody_overtakes_it()
    {
        var runs = new[]
        {
            new RunProgress(1, 0, 0, RunTask.Train(1, 0, 0), NumDevices: 2),
            new RunProgress(2, 0, 1, RunTask.Train(2, 0, 1), NumDevices: 1),
        };
        Assert.Empty(SchedulingPolicy.Assign(runs, ["cpu-1"], new HashSet<int>(), 2, 2));
        var both = SchedulingPolicy.Assign(runs, ["cpu-0", "cpu-1"], new HashSet<int>(), 2, 2);
        Assert.Equal(new Assignment("cpu-0", RunTask.Train(1, 0, 0), ["cpu-1"]).Devices, Assert.Single(both).Devices);
    }

    [Fact]
    public void A_fixed_single_device_run_never_spreads()
    {
        var assigned = SchedulingPolicy.Assign([new RunProgress(1, 0, 0, RunTask.Train(1, 0, 0), NumDevices: 1)], ["a", "b"], new HashSet<int>(), 2, 1);
        Assert.Equal(["a"], Assert.Single(assigned).Devices);
    }

    private static string NodeOf(string device) => device.Split('/')[0];

    [Fact]
    public void A_run_goes_back_to_the_node_holding_its_state_when_a_device_is_free_there()
    {
        var runs = new[] { new RunProgress(1, 0, 1, RunTask.Train(1, 0, 1), NumDevices: 1) };
        var home = new Dictionary<int, string> { [1] = "b" };
        Assert.Equal("b/cpu", Assert.Single(SchedulingPolicy.Assign(runs, ["a/cpu", "b/cpu"], new HashSet<int>(), 2, 2, NodeOf, home)).DeviceId);
        // Without locality, or with its node busy: the first free device.
        Assert.Equal("a/cpu", Assert.Single(SchedulingPolicy.Assign(runs, ["a/cpu", "b/cpu"], new HashSet<int>(), 2, 2, NodeOf)).DeviceId);
        Assert.Equal("a/cpu", Assert.Single(SchedulingPolicy.Assign(runs, ["a/cpu"], new HashSet<int>(), 2, 2, NodeOf, home)).DeviceId);
    }

    [Fact]
    public void Locality_never_changes_which_run_goes_first()
    {
        var runs = new[] { new RunProgress(1, 0, 2, RunTask.Train(1, 0, 2)), new RunProgress(2, 0, 1, RunTask.Train(2, 0, 1)) };
        var home = new Dictionary<int, string> { [1] = "a", [2] = "a" };
        var assigned = SchedulingPolicy.Assign(runs, ["a/cpu", "b/cpu"], new HashSet<int>(), 2, 2, NodeOf, home);
        Assert.Equal([(2, "a/cpu"), (1, "b/cpu")], assigned.Select(a => (a.Task.RunId, a.DeviceId)));
    }

    [Fact]
    public void A_task_on_several_devices_takes_them_on_one_node()
    {
        var runs = new[] { new RunProgress(1, 0, 0, RunTask.Train(1, 0, 0), NumDevices: 2) };
        var assigned = SchedulingPolicy.Assign(runs, ["a/cpu-0", "b/cpu-0", "b/cpu-1"], new HashSet<int>(), 4, 1, NodeOf);
        Assert.Equal(["b/cpu-0", "b/cpu-1"], Assert.Single(assigned).Devices);
        Assert.Empty(SchedulingPolicy.Assign(runs, ["a/cpu-0", "b/cpu-0"], new HashSet<int>(), 4, 1, NodeOf));
        var auto = SchedulingPolicy.Assign([new RunProgress(1, 0, 0, RunTask.Train(1, 0, 0))], ["a/cpu-0", "b/cpu-0", "b/cpu-1"], new HashSet<int>(), 3, 1, NodeOf);
        Assert.Equal(["a/cpu-0"], Assert.Single(auto).Devices);
    }
}
