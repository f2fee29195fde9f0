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
            var assigned = SchedulingPolicy.Assign(snapshot, deviceIds, new HashSet<int>()).Select(a => a.Task).ToList();
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
        var order = SchedulingPolicy.Assign(runs, ["a", "b", "c", "d"], new HashSet<int>()).Select(a => a.Task.RunId);
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
        var assigned = SchedulingPolicy.Assign(runs, ["cpu-0", "cpu-1"], new HashSet<int> { 1 });
        var only = Assert.Single(assigned);
        Assert.Equal(new Assignment("cpu-0", RunTask.Train(3, 0, 0)), only);
    }
}
