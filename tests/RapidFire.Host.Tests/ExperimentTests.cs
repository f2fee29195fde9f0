using System.Collections.Concurrent;
using RapidFire.Actors.Runs;
using RapidFire.Host.Cli;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host.Tests;

/// <summary>One experiment is active per process: the tests that open one run one after another.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ExperimentCollection
{
    public const string Name = "experiments";
}

/// <summary>A small slice of the example's real digits: 15% of each partition, through a handle of its own.</summary>
public sealed class SmallMnist : IDisposable
{
    public SmallMnist()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("rf-mnist-").FullName;
        var data = RepoPaths.MnistExample("data");
        HandlePath = Path.Combine(Directory, "handle.json");
        File.WriteAllText(HandlePath, $$"""
            { "locators": { "train": "{{data}}/train.csv", "validation": "{{data}}/validation.csv", "test": "{{data}}/test.csv",
                            "predict": "{{data}}/predict.csv", "objects": "{{data}}" },
              "download_columns": ["filepath"], "fraction": 0.15, "seed": 1 }
            """);
        ConfigPath = Path.Combine(Directory, "configs.json");
        File.WriteAllText(ConfigPath, """
            { "user_knobs": { "model_type": "mlp", "hidden": [16, 32] },
              "train": { "epochs": 1, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
    }

    public string Directory { get; }
    public string HandlePath { get; }
    public string ConfigPath { get; }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

[Collection(ExperimentCollection.Name)]
public sealed class ExperimentTests : IDisposable
{
    private readonly SmallMnist mnist = new();

    public void Dispose() => mnist.Dispose();

    [Fact]
    public async Task RunFit_trains_every_config_reports_progress_and_writes_the_experiment_files()
    {
        using var experiment = new Experiment("api", Path.Combine(mnist.Directory, "experiments"));
        var seen = new ConcurrentBag<ExperimentEvent>();
        experiment.Progress += seen.Add;

        var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
            ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));

        Assert.False(result.Cancelled);
        Assert.Equal([1, 2], result.Runs.Select(r => r.RunId));
        Assert.All(result.Runs, r => Assert.Equal((RunStatus.Completed, EndReason.Epochs), (r.Status, r.EndedBy)));
        Assert.Equal(6, seen.OfType<TaskDone>().Count());                 // 2 runs x (2 chunks + 1 validation)
        Assert.Equal(4, seen.OfType<EpochDone>().Count());                // train and validation, per run
        Assert.Equal(2 * 10 + 2 * 3, seen.OfType<MinibatchDone>().Count()); // 300 train rows / 32, 75 validation rows / 32
        Assert.Contains(seen.OfType<RunChanged>(), e => e.Run.IsEnded);

        var runs = File.ReadAllLines(Path.Combine(experiment.Path, "runs.csv"));
        Assert.StartsWith("run_id,status,ended_by,epochs_done,model_type,hidden,epochs,batch_size,optimizer.name,optimizer.args.lr,named_metrics,val_loss,val_top1_accuracy", runs[0]);
        Assert.Equal(3, runs.Length);
        Assert.True(File.Exists(Path.Combine(experiment.Path, "metrics", "run-2.minibatches.csv")));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(experiment.Path, "metrics", "run-2.epochs.csv")).Length);
    }

    [Fact]
    public async Task A_finished_experiment_opened_again_shows_its_runs_and_metrics_from_its_journal()
    {
        var dir = Path.Combine(mnist.Directory, "experiments");
        FitResult result;
        using (var experiment = new Experiment("viewed", dir))
        {
            result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));
            experiment.End();
        }

        using var opened = Experiment.Open("viewed", dir);
        var runs = await opened.RunsAsync();
        Assert.False(runs.Fitting);
        Assert.Equal(result.Runs.Select(r => (r.RunId, r.Status, r.EpochsDone)), runs.Runs.Select(r => (r.RunId, r.Status, r.EpochsDone)));
        var metrics = await opened.MetricsAsync(2);
        Assert.NotNull(metrics);
        Assert.Equal(10, metrics.Minibatches.Count(m => m.Mode == "train"));   // 300 train rows / 32
        Assert.Equal(3, metrics.Minibatches.Count(m => m.Mode == "validation"));
        Assert.Equal(["train", "validation"], metrics.Epochs.Select(e => e.Mode));
        Assert.Equal(result.Runs[1].ValidationHistory[0]["top1_accuracy"], metrics.Epochs[1].Values["top1_accuracy"]);
        Assert.Null(await opened.MetricsAsync(9));
    }

    [Fact]
    public async Task A_cancelled_fit_returns_with_its_runs_stopped()
    {
        using var experiment = new Experiment("cancel", Path.Combine(mnist.Directory, "experiments"));
        using var cancel = new CancellationTokenSource();
        experiment.Progress += e => { if (e is TaskDone) cancel.Cancel(); };
        var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
            ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 4), cancel.Token);
        Assert.True(result.Cancelled);
        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Stopped, r.Status));
    }

    [Fact]
    public async Task An_object_file_that_cannot_be_read_fails_its_run_naming_the_id_and_the_path()
    {
        var dir = Directory.CreateTempSubdirectory("rf-broken-").FullName;
        try
        {
            var rows = File.ReadLines(RepoPaths.MnistExample("data/train.csv")).Take(41).ToList();
            Directory.CreateDirectory(Path.Combine(dir, "images"));
            foreach (var row in rows.Skip(1))
            {
                var file = row.Split(',')[1];
                File.Copy(RepoPaths.MnistExample($"data/{file}"), Path.Combine(dir, file));
            }
            var broken = rows[6].Split(',');
            File.WriteAllText(Path.Combine(dir, broken[1]), "not a png");
            File.WriteAllLines(Path.Combine(dir, "train.csv"), rows);
            File.WriteAllText(Path.Combine(dir, "handle.json"), """{ "locators": { "train": "train.csv" }, "download_columns": ["filepath"] }""");

            using var experiment = new Experiment("broken", Path.Combine(dir, "experiments"));
            var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(Path.Combine(dir, "handle.json")));

            Assert.All(result.Runs, run =>
            {
                Assert.Equal(RunStatus.Failed, run.Status);
                Assert.Equal("RowPrep", run.Failure!.Method);
                Assert.Equal(long.Parse(broken[0]), run.Failure.RowId);
                Assert.Contains($"cannot read image {Path.Combine(dir, broken[1])}", run.Failure.Message);
            });
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Resuming_removes_the_temporary_files_of_checkpoint_writes_a_crash_interrupted_and_keeps_the_checkpoints()
    {
        var dir = Path.Combine(mnist.Directory, "interrupted");
        using (var first = new Experiment("tmp", dir)) first.End();
        var run = Path.Combine(dir, "tmp", "checkpoints", "run-1");
        Directory.CreateDirectory(run);
        var stray = Path.Combine(run, $".e0000-c0001.ckpt.{Guid.NewGuid():N}.tmp");
        var kept = Path.Combine(run, "e0000-c0000.ckpt");
        File.WriteAllText(stray, "half a checkpoint");
        File.WriteAllText(kept, "a finished checkpoint's name");

        using (var resumed = Experiment.Resume("tmp", dir)) resumed.End();

        Assert.False(File.Exists(stray));
        Assert.True(File.Exists(kept));
        Assert.Contains("checkpoints: removed 1 temporary file of writes a crash interrupted", File.ReadAllText(Path.Combine(dir, "tmp", "experiment.log")));
    }

    [Fact]
    public async Task The_journals_log_is_copied_into_its_file_at_epoch_ends_while_the_experiment_is_open()
    {
        using var experiment = new Experiment("wal", Path.Combine(mnist.Directory, "wal"));
        await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
            ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));

        // Still open (the journal's connection holds the log): the file is more than the 4 KB shell of a new database.
        var journal = new FileInfo(Path.Combine(experiment.Path, "journal.db"));
        for (var wait = 0; wait < 50 && journal.Length <= 4096; wait++, journal.Refresh()) await Task.Delay(100);
        Assert.True(journal.Length > 4096, $"journal.db is {journal.Length} bytes");
        Assert.Null(Actors.Persistence.JournalConfig.SqliteProblem(journal.FullName));
    }

    [Theory]
    [InlineData("shell")]
    [InlineData("empty")]
    [InlineData("garbage")]
    public void Resume_leaves_a_journal_it_cannot_read_untouched_and_names_it(string damage)
    {
        var dir = Path.Combine(mnist.Directory, $"damaged-{damage}");
        using (var first = new Experiment("hurt", dir)) { } // a fit's crash: its journal is in journal.db and journal.db-wal
        var journal = Path.Combine(dir, "hurt", "journal.db");
        File.Delete(journal + "-wal");
        File.Delete(journal + "-shm");
        switch (damage)
        {
            case "shell": // what a lost -wal leaves of a journal whose tables were created in the log
                File.Delete(journal);
                using (var shell = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={journal};Pooling=False"))
                {
                    shell.Open();
                    using var wal = shell.CreateCommand();
                    wal.CommandText = "PRAGMA journal_mode=WAL;";
                    wal.ExecuteNonQuery();
                }
                File.Delete(journal + "-wal");
                File.Delete(journal + "-shm");
                break;
            case "empty":
                File.WriteAllBytes(journal, []);
                break;
            default:
                File.WriteAllText(journal, "not a database, but a file the user wants back");
                break;
        }
        var before = File.ReadAllBytes(journal);

        var e = Assert.Throws<InvalidOperationException>(() => Experiment.Resume("hurt", dir));

        Assert.StartsWith($"experiment 'hurt' cannot be opened: its journal {journal} ", e.Message);
        Assert.EndsWith("; nothing was changed", e.Message);
        Assert.Equal(before, File.ReadAllBytes(journal));
        Assert.False(File.Exists(journal + "-wal"));
    }

    [Fact]
    public void One_experiment_is_active_per_process_and_a_name_that_exists_is_refused_with_how_to_resume_it()
    {
        var dir = Path.Combine(mnist.Directory, "experiments");
        using (var first = new Experiment("same", dir))
        {
            var e = Assert.Throws<InvalidOperationException>(() => new Experiment("other", dir));
            Assert.Contains("experiment 'same' is active in this process", e.Message);
            first.End();
        }
        var exists = Assert.Throws<InvalidOperationException>(() => new Experiment("same", dir));
        Assert.Contains($"experiment 'same' exists in {dir}", exists.Message);
        Assert.Contains($"rapidfire resume --experiment same --dir {dir}", exists.Message);
        Assert.Throws<ArgumentException>(() => new Experiment("bad/name", dir));
        var missing = Assert.Throws<InvalidOperationException>(() => Experiment.Resume("never", dir));
        Assert.Contains("there is no experiment 'never'", missing.Message);
    }

    [Fact]
    public void The_fit_command_prints_the_final_table_and_writes_runs_csv_and_the_tensorboard_files_it_is_asked_for()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var dir = Path.Combine(mnist.Directory, "cli");
        var tensorboard = Path.Combine(mnist.Directory, "tb");
        var code = RapidFireCli.Run(["fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", mnist.HandlePath,
            "--config", mnist.ConfigPath, "--experiment", "cli", "--dir", dir, "--chunks", "2", "--devices", "cpu:2",
            "--tensorboard", tensorboard], stdout, stderr);

        var output = stdout.ToString();
        Assert.True(code == 0, stderr.ToString() + output);
        Assert.Contains("run 1 epoch 1 validation: loss", output);
        Assert.Contains("run 2: Completed (epochs) after 1 epoch(s)", output);
        Assert.Matches(@"│ 2\s+│ Completed \(epochs\) │ 1/1 epochs │ 32\s+│", output);
        Assert.Contains("fit done", output);
        Assert.True(File.Exists(Path.Combine(dir, "cli", "runs.csv")));
        Assert.Contains($"tensorboard: {Path.Combine(tensorboard, "cli")}", output);
        foreach (var run in new[] { 1, 2 }) // read back in TensorBoardTests; here: one event file per run, validation loss of epoch 1 in it
        {
            var events = Export.EventFiles.Read(Assert.Single(Directory.GetFiles(Path.Combine(tensorboard, "cli", $"run-{run}"), "events.out.tfevents.*")));
            Assert.Single(Export.EventFiles.Scalars(events, "val_loss"), s => s.Step == 1);
        }
    }

    [Fact]
    public void The_fit_command_rejects_bad_inputs_before_anything_runs()
    {
        File.WriteAllText(mnist.ConfigPath, """{ "train": { "epochs": 1, "batch_size": 0, "optimizer": { "name": "Adam" } } }""");
        var stderr = new StringWriter();
        var dir = Path.Combine(mnist.Directory, "never");
        var code = RapidFireCli.Run(["fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", mnist.HandlePath,
            "--config", mnist.ConfigPath, "--experiment", "x", "--dir", dir], new StringWriter(), stderr);
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains("train.batch_size", stderr.ToString());
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void The_fit_command_rejects_a_config_asking_for_more_devices_than_the_fit_has_before_anything_runs()
    {
        File.WriteAllText(mnist.ConfigPath, """
            { "user_knobs": { "model_type": "mlp", "num_devices": [1, 3] },
              "train": { "epochs": 1, "batch_size": 32, "optimizer": { "name": "Adam" } } }
            """);
        var stderr = new StringWriter();
        var dir = Path.Combine(mnist.Directory, "never");
        var code = RapidFireCli.Run(["fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", mnist.HandlePath,
            "--config", mnist.ConfigPath, "--experiment", "x", "--dir", dir, "--devices", "cpu:2"], new StringWriter(), stderr);
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Equal("error: config 2: num_devices = 3, but the fit has 2 devices (--devices)", stderr.ToString().Trim());
        Assert.False(Directory.Exists(dir));
    }
}
