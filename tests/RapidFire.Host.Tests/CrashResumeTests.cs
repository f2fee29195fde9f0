using RapidFire.Actors.Checkpoints;
using RapidFire.Host.Cli;
using RapidFire.Tests;

namespace RapidFire.Host.Tests;

/// <summary>A grid on real digits, trained once without interruption: what every crashed-and-resumed fit must equal.</summary>
public sealed class UninterruptedFit : IAsyncLifetime
{
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("rf-crash-").FullName;

    public string Handle => Path.Combine(Directory, "handle.json");

    public string Configs => Path.Combine(Directory, "configs.json");

    public string Experiments => Path.Combine(Directory, "experiments");

    /// <summary>
    /// The crash tests' children checkpoint every chunk, so that a fit killed after its first checkpoints is killed
    /// mid-fit (the default time strategy writes a 2-epoch fit's first two checkpoints at its epochs' ends).
    /// </summary>
    public static IReadOnlyDictionary<string, string> ChunkCheckpoints { get; } = new Dictionary<string, string> { ["RAPIDFIRE__SAVE_STRATEGY"] = "chunk" };

    public string[] FitArgs(string experiment, params string[] more) => FitArgsIn(Experiments, experiment, more);

    /// <summary>The arguments of this fit as <paramref name="experiment"/> in the experiments folder <paramref name="dir"/>.</summary>
    public string[] FitArgsIn(string dir, string experiment, params string[] more) =>
    [
        "fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", Handle, "--config", Configs,
        "--experiment", experiment, "--dir", dir, "--chunks", "3", .. more,
    ];

    /// <summary>The bytes of every file the uninterrupted fit left.</summary>
    public long Bytes => new DirectoryInfo(Path.Combine(Experiments, "full")).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);

    public async Task InitializeAsync()
    {
        var data = RepoPaths.MnistExample("data");
        File.WriteAllText(Handle, $$"""
            { "locators": { "train": "{{data}}/train.csv", "validation": "{{data}}/validation.csv", "objects": "{{data}}" },
              "download_columns": ["filepath"], "fraction": 0.5, "seed": 3 }
            """);
        File.WriteAllText(Configs, """
            { "user_knobs": { "model_type": ["cnn", "mlp"], "hidden": 32, "dropout": 0.2 },
              "train": { "epochs": 2, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } },
                         "lr_scheduler": { "name": "StepLR", "args": { "step_size": 1, "gamma": 0.5 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
        var (code, output) = await ChildCli.RunAsync(ChunkCheckpoints, FitArgs("full"));
        Assert.True(code == 0, output);
    }

    /// <summary>Asserts that <paramref name="experiment"/> ended as this fit: runs.csv, every metric file and the final checkpoints, bit for bit.</summary>
    public void AssertSame(string experiment)
    {
        AssertSameRunsAndWeights(experiment);
        var expected = Path.Combine(Experiments, "full");
        var metricFiles = System.IO.Directory.GetFiles(Path.Combine(expected, "metrics")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(4, metricFiles.Count);
        Assert.Equal(metricFiles, System.IO.Directory.GetFiles(Path.Combine(experiment, "metrics")).Select(Path.GetFileName).Order());
        foreach (var file in metricFiles)
            Assert.True(File.ReadAllText(Path.Combine(expected, "metrics", file!)) == File.ReadAllText(Path.Combine(experiment, "metrics", file!)),
                $"metrics/{file} differs from the uninterrupted fit's");
    }

    /// <summary>Asserts that <paramref name="experiment"/>'s runs.csv and final checkpoints equal this fit's, bit for bit.</summary>
    public void AssertSameRunsAndWeights(string experiment)
    {
        var expected = Path.Combine(Experiments, "full");
        Assert.Equal(File.ReadAllText(Path.Combine(expected, "runs.csv")), File.ReadAllText(Path.Combine(experiment, "runs.csv")));
        var expectedStore = new LocalCheckpointStore(Path.Combine(expected, "checkpoints"));
        var actualStore = new LocalCheckpointStore(Path.Combine(experiment, "checkpoints"));
        foreach (var run in new[] { 1, 2 })
        {
            var final = expectedStore.List(run)[^1];
            Assert.Equal(final, actualStore.List(run)[^1]);
            Assert.True(expectedStore.Load(final).Payload.Span.SequenceEqual(actualStore.Load(final).Payload.Span),
                $"run {run}: the final weights and optimizer state differ from the uninterrupted fit's");
        }
    }

    public Task DisposeAsync()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Kill tests: a real `rapidfire fit` child process is killed with SIGKILL while it trains, and `rapidfire resume`
/// finishes it. Weights, metric files and runs.csv must equal the uninterrupted fit's, bit for bit.
/// </summary>
[Collection(ExperimentCollection.Name)]
public sealed class CrashResumeTests(UninterruptedFit full) : IClassFixture<UninterruptedFit>
{
    /// <summary>
    /// Starts a fit and kills it once each run has two durable checkpoints: a run's next chunk starts only after the
    /// previous one is journaled, so each run has completed chunks in its journal and is training a later one. On a
    /// loaded machine the small fit may finish before the kill lands; then it is tried again under a new name.
    /// </summary>
    private async Task<string> KilledFit(string name, params string[] more)
    {
        for (var attempt = 1; ; attempt++)
        {
            var experiment = attempt == 1 ? name : $"{name}{attempt}";
            using var child = ChildCli.Start(UninterruptedFit.ChunkCheckpoints, full.FitArgs(experiment, more));
            var checkpoints = Path.Combine(full.Experiments, experiment, "checkpoints");
            bool HasCheckpoints(int run) => Directory.Exists(Path.Combine(checkpoints, $"run-{run}")) &&
                                            Directory.EnumerateFiles(Path.Combine(checkpoints, $"run-{run}"), "*.ckpt").Count() >= 2;
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!(HasCheckpoints(1) && HasCheckpoints(2)) && !child.HasExited && DateTime.UtcNow < deadline) await Task.Delay(5);
            child.Kill();
            var path = Path.Combine(full.Experiments, experiment);
            if (!File.Exists(Path.Combine(path, "runs.csv"))) return path;
            Assert.True(attempt < 3, "the fit kept finishing before it could be killed: " + child.Output);
        }
    }

    /// <summary>The checkpoint of the newest chunk the run's journal (SQLite) holds: the one a resume starts from.</summary>
    private static CheckpointRef JournaledCheckpoint(string experiment, string persistenceId)
    {
        using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(experiment, "journal.db")}");
        db.Open();
        using var query = db.CreateCommand();
        query.CommandText = "SELECT message FROM journal WHERE persistence_id = $id AND manifest = 'chunk-completed.v1' ORDER BY sequence_number DESC LIMIT 1";
        query.Parameters.AddWithValue("$id", persistenceId);
        var json = System.Text.Encoding.UTF8.GetString((byte[])query.ExecuteScalar()!);
        var checkpoint = System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("Checkpoint");
        return new CheckpointRef(checkpoint.GetProperty("RunId").GetInt32(), checkpoint.GetProperty("Epoch").GetInt32(), checkpoint.GetProperty("Chunk").GetInt32());
    }

    private static IReadOnlyList<string> Recovered(string experiment) =>
        File.ReadAllLines(Path.Combine(experiment, "experiment.log")).Where(l => l.Contains(" recovered: ")).ToList();

    [Fact]
    public async Task A_fit_killed_mid_chunk_resumes_to_the_weights_and_metric_files_of_an_uninterrupted_fit()
    {
        var experiment = await KilledFit("killed");

        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", Path.GetFileName(experiment), "--dir", full.Experiments);

        Assert.True(code == 0, output);
        Assert.Contains("fit done", output);
        var recovered = Recovered(experiment);
        Assert.Equal(2, recovered.Count);
        Assert.All(recovered, line => Assert.DoesNotContain(" 0 chunks trained", line)); // completed chunks are not trained again
        full.AssertSame(experiment);
    }

    [Fact]
    public async Task A_fit_whose_journal_is_lost_is_rebuilt_from_its_checkpoints_and_ends_with_the_weights_of_an_uninterrupted_fit()
    {
        var experiment = await KilledFit("lost");
        var journal = Path.Combine(experiment, "journal.db");
        File.WriteAllText(journal, "not a database any more");
        File.Delete(journal + "-wal");
        File.Delete(journal + "-shm");

        var (refused, why) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", "lost", "--dir", full.Experiments);
        Assert.True(refused != 0, why);
        Assert.Contains($"its journal {journal} cannot be read as a SQLite database", why);

        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", "lost", "--dir", full.Experiments, "--from-checkpoints");

        Assert.True(code == 0, output);
        foreach (var run in new[] { 1, 2 })
            Assert.Matches($@"recovery: run {run}: recovered from .*run-{run}/e\d{{4}}-c\d{{4}}\.ckpt: epoch \d+ chunk \d+ \(\d+ chunks trained", output);
        Assert.Contains("recovery: lost with the journal: the IC log", output);
        Assert.Contains("journal.db.unreadable-", output);
        Assert.Single(Directory.GetFiles(experiment, "journal.db.unreadable-*")); // the damaged journal is kept
        Assert.Contains("fit done", output);
        full.AssertSameRunsAndWeights(experiment);
    }

    [Fact]
    public async Task A_fit_ended_by_ctrl_c_writes_runs_csv_removes_its_host_file_and_resume_finishes_it_bit_identically()
    {
        for (var attempt = 1; ; attempt++)
        {
            var name = $"ctrl-c{attempt}";
            var experiment = Path.Combine(full.Experiments, name);
            using var child = ChildCli.Start(UninterruptedFit.ChunkCheckpoints, full.FitArgs(name));
            var checkpoints = Path.Combine(experiment, "checkpoints", "run-1");
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!(Directory.Exists(checkpoints) && Directory.EnumerateFiles(checkpoints, "*.ckpt").Any()) && !child.HasExited && DateTime.UtcNow < deadline)
                await Task.Delay(5);
            child.Interrupt();
            var code = await child.WaitAsync(TimeSpan.FromSeconds(60));
            if (child.Output.Contains("fit done", StringComparison.Ordinal))
            {
                Assert.True(attempt < 3, "the fit kept finishing before Ctrl+C could land: " + child.Output);
                continue; // it ended before the interrupt landed: try again under a new name
            }

            Assert.True(code == 0, child.Output);
            Assert.Contains("fit cancelled", child.Output);
            Assert.Contains("Stopped,cancelled", File.ReadAllText(Path.Combine(experiment, "runs.csv")));
            Assert.False(File.Exists(Path.Combine(experiment, "host.json")), "host.json is left behind");

            var (resumed, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", name, "--dir", full.Experiments);

            Assert.True(resumed == 0, output);
            Assert.Contains("fit done", output);
            full.AssertSame(experiment);
            return;
        }
    }

    [SkippableFact]
    public async Task A_full_disk_interrupts_the_fit_once_and_after_space_is_freed_resume_finishes_it_bit_identically()
    {
        // Half the room the fit's files take: it runs out of space part way, in a checkpoint or in the journal.
        var room = full.Bytes / 2 / 1024;
        using var disk = SmallDisk.Mount(room);

        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, full.FitArgsIn(disk.Path, "full-disk"));

        Assert.True(code == FitCommand.Interrupted, output);
        var reports = output.Split('\n').Where(l => l.Contains("out of disk space", StringComparison.Ordinal)).ToList();
        Assert.True(reports.Count == 1, output); // reported once, never in a loop
        Assert.Contains($"error: the fit was interrupted: out of disk space in {disk.Path}", reports[0]);
        Assert.Contains(" free there)", reports[0]);
        Assert.DoesNotContain("MLSpec.", output); // a full disk is never the spec's fault
        Assert.DoesNotContain("Failed to persist", output);
        Assert.DoesNotContain("   at ", output); // no stack trace
        Assert.Contains("rapidfire resume --experiment full-disk", output);

        disk.Grow(room * 8);
        (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", "full-disk", "--dir", disk.Path);

        Assert.True(code == 0, output);
        Assert.Contains("fit done", output);
        full.AssertSame(Path.Combine(disk.Path, "full-disk"));
    }

    [Fact]
    public async Task A_corrupt_checkpoint_falls_back_to_the_previous_one_with_a_warning_naming_the_file()
    {
        var experiment = await KilledFit("corrupt");
        var store = new LocalCheckpointStore(Path.Combine(experiment, "checkpoints"));
        var newest = JournaledCheckpoint(experiment, $"{Path.GetFileName(experiment)}/run-1");
        var file = store.Describe(newest);
        var bytes = File.ReadAllBytes(file);
        File.WriteAllBytes(file, bytes[..(bytes.Length / 2)]);

        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", Path.GetFileName(experiment), "--dir", full.Experiments);

        Assert.True(code == 0, output);
        Assert.Contains($"warning: run 1: checkpoint '{file}' is corrupt", output);
        var chunksLost = newest.Epoch * 3 + newest.Chunk + 1;
        var run1 = Assert.Single(Recovered(experiment), l => l.Contains("run 1 recovered"));
        Assert.Contains($" {chunksLost - 1} chunks trained", run1);  // back by exactly the chunk whose checkpoint broke
        full.AssertSame(experiment);
    }

    [Fact]
    public async Task The_same_crash_and_resume_on_a_PostgreSQL_journal()
    {
        using var postgres = await PostgresServer.StartAsync();
        var settings = Path.Combine(full.Directory, "postgres.conf");
        File.WriteAllText(settings, $$"""
            rapidfire.journal { provider = postgresql, connection-string = "{{await postgres.CreateDatabaseAsync("crash")}}" }
            """);

        var experiment = await KilledFit("postgres", "--settings", settings);
        var (code, output) = await ChildCli.RunAsync(UninterruptedFit.ChunkCheckpoints, "resume", "--experiment", Path.GetFileName(experiment), "--dir", full.Experiments, "--settings", settings);

        Assert.True(code == 0, output);
        Assert.False(File.Exists(Path.Combine(experiment, "journal.db")), "the journal should be in PostgreSQL");
        Assert.Equal(2, Recovered(experiment).Count);
        full.AssertSame(experiment);
    }
}
