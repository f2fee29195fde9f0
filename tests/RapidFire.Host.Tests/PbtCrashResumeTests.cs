using nietras.SeparatedValues;
using RapidFire.Tests;

namespace RapidFire.Host.Tests;

/// <summary>A PBT fit on real digits, trained once without interruption: what a killed-and-resumed one must equal.</summary>
public sealed class UninterruptedPbtFit : IAsyncLifetime
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("rf-pbt-crash-").FullName;

    public string Experiments => Path.Combine(Directory, "experiments");

    public string[] FitArgs(string experiment) =>
    [
        "fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", Path.Combine(Directory, "handle.json"),
        "--config", Path.Combine(Directory, "pbt.json"), "--experiment", experiment, "--dir", Experiments, "--chunks", "2",
    ];

    public async Task InitializeAsync()
    {
        var data = RepoPaths.MnistExample("data");
        File.WriteAllText(Path.Combine(Directory, "handle.json"), $$"""
            { "locators": { "train": "{{data}}/train.csv", "validation": "{{data}}/validation.csv", "objects": "{{data}}" },
              "download_columns": ["filepath"], "fraction": 0.5, "seed": 3 }
            """);
        File.WriteAllText(Path.Combine(Directory, "pbt.json"), """
            { "search": "pbt", "seed": 5,
              "user_knobs": { "model_type": "mlp", "hidden": 32, "dropout": 0.0 },
              "train": { "epochs": 3, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": [0.0001, 0.0003, 0.001, 0.003] } } },
              "named_metrics": ["top1_accuracy"],
              "pbt": { "quantile": 0.25, "metric": "top1_accuracy", "mode": "max",
                       "mutations": { "optimizer.args.lr": { "factors": [0.5, 2.0] } } } }
            """);
        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, FitArgs("full"));
        Assert.True(code == 0, output);
    }

    /// <summary>The IC log without its times: operation, run, changes, status, new run, and why PBT asked.</summary>
    public static List<string> Operations(string experiment)
    {
        using var reader = Sep.Reader(o => o with { Unescape = true }).FromFile(Path.Combine(experiment, "ic-log.csv"));
        var rows = new List<string>();
        foreach (var row in reader)
        {
            var cells = new List<string>();
            foreach (var column in new[] { "op_id", "run_id", "operation", "arguments", "status", "new_run_id", "origin" }) cells.Add(row[column].ToString());
            rows.Add(string.Join(" | ", cells));
        }
        return rows;
    }

    public Task DisposeAsync()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>
/// A PBT fit killed with SIGKILL just as it makes its first exploit, then resumed, ends as the uninterrupted one: the
/// same exploits (parents, mutated knobs, new runs) in the IC log and the same runs.csv, bit for bit.
/// </summary>
[Collection(ExperimentCollection.Name)]
public sealed class PbtCrashResumeTests(UninterruptedPbtFit full) : IClassFixture<UninterruptedPbtFit>
{
    [Fact]
    public async Task A_pbt_fit_killed_at_its_first_exploit_resumes_to_the_same_decisions_and_runs_as_an_uninterrupted_one()
    {
        var expected = Path.Combine(full.Experiments, "full");
        var operations = UninterruptedPbtFit.Operations(expected);
        Assert.Equal(2, operations.Count); // 4 runs, quantile 0.25: one exploit after epoch 1 and one after epoch 2
        Assert.All(operations, op => Assert.Contains("| clone-warm | optimizer.args.lr=", op));
        Assert.All(operations, op => Assert.Contains("| applied |", op));

        string killed;
        for (var attempt = 1; ; attempt++)
        {
            killed = Path.Combine(full.Experiments, $"killed{attempt}");
            using var child = ChildCli.Start(UninterruptedFit.ChunkCheckpoints, full.FitArgs(Path.GetFileName(killed)));
            var log = Path.Combine(killed, "ic-log.csv");
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!File.Exists(log) && !child.HasExited && DateTime.UtcNow < deadline) await Task.Delay(2);
            child.Kill();
            if (!File.Exists(Path.Combine(killed, "runs.csv"))) break;
            Assert.True(attempt < 3, "the fit kept finishing before it could be killed: " + child.Output);
        }

        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", Path.GetFileName(killed), "--dir", full.Experiments);

        Assert.True(code == 0, output);
        Assert.Contains(File.ReadAllLines(Path.Combine(killed, "experiment.log")), l => l.Contains(" recovered: ", StringComparison.Ordinal));
        Assert.Equal(operations, UninterruptedPbtFit.Operations(killed));
        Assert.Equal(File.ReadAllText(Path.Combine(expected, "runs.csv")), File.ReadAllText(Path.Combine(killed, "runs.csv")));
    }
}
