using System.Globalization;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Host.Cli;
using RapidFire.Host.Evaluation;
using RapidFire.Host.Tests.Export;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using TorchSharp;

namespace RapidFire.Host.Tests;

/// <summary>
/// One experiment of the MNIST example (2 runs x 2 epochs, 2 chunks per epoch, on the small slice with test and predict
/// partitions), fitted once for the tests of test and predict; it is ended, and each test opens it again.
/// </summary>
public sealed class EvaluatedMnist : IDisposable
{
    public const string Name = "evaluated";

    public EvaluatedMnist()
    {
        File.WriteAllText(Mnist.ConfigPath, """
            { "user_knobs": { "model_type": "mlp", "hidden": [16, 32] },
              "train": { "epochs": 2, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
        Directory = Path.Combine(Mnist.Directory, "experiments");
        using var experiment = new Experiment(Name, Directory);
        var result = experiment.RunFit(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")), ConfigGroup.Load(Mnist.ConfigPath),
            DataHandle.Load(Mnist.HandlePath), new FitOptions(Chunks: 2));
        Runs = result.Runs;
        InProcessTest = experiment.RunTest(); // on the experiment that just fitted, before it ends
        experiment.End();
    }

    /// <summary>The test of the final checkpoints, run on the experiment object that fitted.</summary>
    public TestReport InProcessTest { get; }

    public SmallMnist Mnist { get; } = new();

    /// <summary>The experiments directory.</summary>
    public string Directory { get; }

    /// <summary>The runs as the fit ended them.</summary>
    public IReadOnlyList<RunState> Runs { get; }

    /// <summary>A data handle over the example's data with the small slice's sampling and the given partitions.</summary>
    public string Handle(string file, string locators)
    {
        var path = Path.Combine(Mnist.Directory, file);
        File.WriteAllText(path, $$"""
            { "locators": { {{locators}}, "objects": "{{RepoPaths.MnistExample("data")}}" },
              "download_columns": ["filepath"], "fraction": 0.15, "seed": 1 }
            """);
        return path;
    }

    public void Dispose() => Mnist.Dispose();
}

[Collection(ExperimentCollection.Name)]
public sealed class EvaluationTests(EvaluatedMnist mnist) : IClassFixture<EvaluatedMnist>
{
    private static readonly string Data = RepoPaths.MnistExample("data");

    private Experiment Open() => Experiment.Open(EvaluatedMnist.Name, mnist.Directory);

    [Fact]
    public void The_fit_trained_both_runs_for_two_epochs()
    {
        Assert.All(mnist.Runs, r => Assert.Equal((RunStatus.Completed, 2, 2), (r.Status, r.EpochsDone, r.ChunksPerEpoch)));
    }

    [Fact]
    public async Task Test_uses_the_chosen_checkpoint_of_every_completed_run_and_writes_a_file_per_run()
    {
        using var experiment = Open();
        var final = await experiment.RunTestAsync();
        var first = await experiment.RunTestAsync(new TestOptions(Checkpoint: CheckpointChoice.Parse("epoch:1")));
        var best = await experiment.RunTestAsync(new TestOptions(Checkpoint: CheckpointChoice.Parse("best:top1_accuracy")));

        Assert.Equal([1, 2], final.Runs.Select(r => r.RunId));
        foreach (var (reopened, inProcess) in final.Runs.Zip(mnist.InProcessTest.Runs))
        {
            Assert.Equal(reopened.Checkpoint, inProcess.Checkpoint);
            Assert.Equal(reopened.Metrics, inProcess.Metrics);
        }
        Assert.All([.. final.Runs, .. first.Runs, .. best.Runs], r => Assert.Null(r.Error));
        Assert.Equal([new CheckpointRef(1, 1, 1), new CheckpointRef(2, 1, 1)], final.Runs.Select(r => r.Checkpoint));
        Assert.Equal([new CheckpointRef(1, 0, 1), new CheckpointRef(2, 0, 1)], first.Runs.Select(r => r.Checkpoint));
        Assert.All(final.Runs, r => Assert.Equal(["loss", "top1_accuracy", "recall_8"], r.Metrics.Keys));
        for (var i = 0; i < 2; i++)
        {
            // The metrics are those of the checkpoint tested: they differ between the epochs...
            Assert.NotEqual(final.Runs[i].Metrics["loss"], first.Runs[i].Metrics["loss"]);
            // ...and the best epoch by validation accuracy gives exactly the metrics of that epoch's checkpoint.
            var history = mnist.Runs[i].ValidationHistory;
            var bestEpoch = history[1]["top1_accuracy"] > history[0]["top1_accuracy"] ? 2 : 1;
            Assert.Equal(bestEpoch, best.Runs[i].Epoch);
            Assert.Equal((bestEpoch == 2 ? final : first).Runs[i].Metrics, best.Runs[i].Metrics);
            Assert.StartsWith("best top1_accuracy (max):", best.Runs[i].Reason);
        }

        // The files hold the last test: one row per run file, and the summary.
        var lines = File.ReadAllLines(Path.Combine(experiment.Path, "test", "run-2.csv"));
        Assert.Equal("run_id,checkpoint,checkpoint_file,epoch,loss,top1_accuracy,recall_8", lines[0]);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith($"2,best:top1_accuracy:max,run-2/e000{best.Runs[1].Epoch - 1}-c0001.ckpt,{best.Runs[1].Epoch},", lines[1]);
        Assert.Equal(best.Runs[1].Metrics["top1_accuracy"], double.Parse(lines[1].Split(',')[5], CultureInfo.InvariantCulture));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(best.Folder, "summary.csv")).Length);
        var log = File.ReadAllText(Path.Combine(experiment.Path, "experiment.log"));
        Assert.Contains("test of runs 1, 2 with checkpoint epoch:1 started", log);
        Assert.Contains("test of run 1 (run-1/e0000-c0001.ckpt, end of epoch 1): loss ", log);
    }

    [Fact]
    public async Task Test_computes_what_validation_computes_run_on_the_validation_rows_it_gives_each_epochs_validation_metrics()
    {
        var handle = DataHandle.Load(mnist.Handle("val-as-test.json", $"\"test\": \"{Data}/validation.csv\""));
        using var experiment = Open();
        foreach (var epoch in new[] { 1, 2 })
        {
            var report = await experiment.RunTestAsync(new TestOptions(Checkpoint: CheckpointChoice.AtEpoch(epoch), Data: handle));
            foreach (var (run, fitted) in report.Runs.Zip(mnist.Runs))
            {
                var validation = fitted.ValidationHistory[epoch - 1];
                Assert.Equal(validation.Keys, run.Metrics.Keys);
                foreach (var (name, value) in validation) Assert.Equal(value, run.Metrics[name]); // bit for bit
            }
        }
    }

    [Fact]
    public async Task The_test_accuracy_of_epoch_1_is_that_of_its_checkpoint_evaluated_by_hand()
    {
        using var experiment = Open();
        var report = await experiment.RunTestAsync(new TestOptions([2], CheckpointChoice.AtEpoch(1)));
        var tested = Assert.Single(report.Runs);

        // By hand: the run's model restored from run-2/e0000-c0001.ckpt, one test image at a time.
        var spec = SpecCompiler.CompileFile(RepoPaths.MnistExample("MnistSpec.cs")).CreateInstance();
        var cfg = mnist.Runs[1].Config;
        using var model = RunModel.Create(spec, cfg, 42);
        RunStateCodec.RestoreInto(model, new LocalCheckpointStore(Path.Combine(experiment.Path, "checkpoints")).Load(new CheckpointRef(2, 0, 1)));
        model.Model.eval();
        var rows = DataHandle.Load(mnist.Mnist.HandlePath).Open(Mode.Test);
        var correct = 0;
        using (torch.no_grad())
            foreach (var row in rows)
            {
                using var scope = torch.NewDisposeScope();
                var example = (Dictionary<string, object>)spec.RowPrep(row, cfg, Mode.Test);
                var logits = ((torch.nn.Module<torch.Tensor, torch.Tensor>)model.Model).forward(((torch.Tensor)example["images"]).unsqueeze(0));
                if (logits.argmax(1).item<long>() == row.GetInt64("label")) correct++;
            }
        Assert.Equal(45, rows.RowCount); // 15% of 300
        Assert.Equal((double)correct / rows.RowCount, tested.Metrics["top1_accuracy"], 1e-12);
    }

    [Fact]
    public async Task Predictions_on_the_test_rows_without_labels_agree_with_the_test_accuracy()
    {
        // The test partition's rows as a predict partition: the same file without its label column.
        var stripped = Path.Combine(mnist.Mnist.Directory, "test-unlabelled.csv");
        var testLines = File.ReadAllLines(Path.Combine(Data, "test.csv"));
        File.WriteAllLines(stripped, testLines.Select(l => string.Join(',', l.Split(',')[..2])));
        var labels = testLines.Skip(1).Select(l => l.Split(',')).ToDictionary(c => long.Parse(c[0], CultureInfo.InvariantCulture), c => long.Parse(c[2], CultureInfo.InvariantCulture));
        var handle = DataHandle.Load(mnist.Handle("predict-test.json", $"\"predict\": \"{stripped}\""));

        using var experiment = Open();
        var test = await experiment.RunTestAsync();
        var csv = await experiment.RunPredictAsync(new PredictOptions(Data: handle));

        Assert.Empty(csv.Warnings);
        var expectedIds = DataHandle.Load(mnist.Mnist.HandlePath).Open(Mode.Test).Ids;
        var tables = new Dictionary<int, List<string[]>>();
        foreach (var (run, tested) in csv.Runs.Zip(test.Runs))
        {
            Assert.Null(run.Error);
            Assert.Equal(45, run.Rows);
            Assert.Equal(["id", .. Enumerable.Range(0, 10).Select(i => $"logits_{i}"), "predictions"], run.Columns);
            Assert.Equal(Path.Combine(experiment.Path, "predict", $"run-{run.RunId}.csv"), run.File);
            var lines = File.ReadAllLines(run.File!);
            Assert.Equal(string.Join(',', run.Columns), lines[0]);
            var cells = tables[run.RunId] = lines.Skip(1).Select(l => l.Split(',')).ToList();
            var ids = cells.Select(c => long.Parse(c[0], CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(expectedIds, ids); // one row per predict id, in partition order
            var predicted = cells.Select(c => long.Parse(c[11], CultureInfo.InvariantCulture)).ToList();
            var argmax = cells.Select(c => (long)c[1..11].Select(v => double.Parse(v, CultureInfo.InvariantCulture)).Index().MaxBy(x => x.Item).Index).ToList();
            Assert.Equal(predicted, argmax);
            var accuracy = (double)ids.Zip(predicted).Count(p => labels[p.Item1] == p.Item2) / ids.Count;
            Assert.Equal(tested.Metrics["top1_accuracy"], accuracy, 1e-9);
        }

        // The Parquet files hold the same tables, typed (and replace the CSVs: the folder holds the latest predictions).
        var parquet = await experiment.RunPredictAsync(new PredictOptions(Data: handle, Format: PredictFormat.Parquet));
        foreach (var run in parquet.Runs)
        {
            Assert.Equal(Path.Combine(experiment.Path, "predict", $"run-{run.RunId}.parquet"), run.File);
            Assert.False(File.Exists(Path.ChangeExtension(run.File, ".csv")));
            var table = ParquetTable.Read(run.File!);
            var cells = tables[run.RunId];
            Assert.Equal(run.Columns, table.Columns.Select(c => c.Name));
            Assert.Equal(typeof(long), table.TypeOf("id"));
            Assert.Equal(typeof(long), table.TypeOf("predictions"));
            Assert.Equal(typeof(double), table.TypeOf("logits_3"));
            Assert.Equal(cells.Select(c => long.Parse(c[0], CultureInfo.InvariantCulture)), table.Rows.Select(r => (long)r[0]!));
            Assert.Equal(cells.Select(c => long.Parse(c[11], CultureInfo.InvariantCulture)), table.Rows.Select(r => (long)r[11]!));
            Assert.Equal(double.Parse(cells[7][4], CultureInfo.InvariantCulture), (double)table.Rows[7][4]!);
        }
    }

    [Fact]
    public async Task A_predict_partition_with_a_label_column_predicts_and_warns_that_the_label_is_ignored()
    {
        var handle = DataHandle.Load(mnist.Handle("labelled-predict.json", $"\"predict\": \"{Data}/test.csv\""));
        using var experiment = Open();
        var report = await experiment.RunPredictAsync(new PredictOptions([1], Data: handle));

        var warning = $"predict partition {Path.Combine(Data, "test.csv")} has a label column 'label' that predict does not use; it is ignored";
        Assert.Equal([warning], report.Warnings);
        var run = Assert.Single(report.Runs);
        Assert.Null(run.Error);
        Assert.Equal(45, run.Rows);
        Assert.DoesNotContain("label", run.Columns);
        Assert.Contains($"warning: {warning}", File.ReadAllText(Path.Combine(experiment.Path, "experiment.log")));
    }

    [Fact]
    public async Task A_data_handle_without_the_partition_is_an_error_naming_it()
    {
        var path = mnist.Handle("no-test.json", $"\"train\": \"{Data}/train.csv\", \"validation\": \"{Data}/validation.csv\"");
        using var experiment = Open();
        var e = await Assert.ThrowsAsync<DataException>(() => experiment.RunTestAsync(new TestOptions(Data: DataHandle.Load(path))));
        Assert.Equal($"{path}: it has no 'test' partition (it gives: train, validation); add a \"test\" locator to it", e.Message);
        var p = await Assert.ThrowsAsync<DataException>(() => experiment.RunPredictAsync(new PredictOptions(Data: DataHandle.Load(path))));
        Assert.Contains("it has no 'predict' partition", p.Message);
        var unknown = await Assert.ThrowsAsync<ArgumentException>(() => experiment.RunTestAsync(new TestOptions([2, 9])));
        Assert.Equal("experiment 'evaluated' has no run 9; its runs are 1, 2", unknown.Message);
    }

    [Fact]
    public async Task A_run_whose_checkpoint_is_missing_or_corrupt_fails_alone_naming_the_file()
    {
        // A copy of the experiment, whose checkpoints can be damaged.
        var copy = Path.Combine(mnist.Mnist.Directory, "damaged");
        CopyDirectory(Path.Combine(mnist.Directory, EvaluatedMnist.Name), Path.Combine(copy, EvaluatedMnist.Name));
        var checkpoints = Path.Combine(copy, EvaluatedMnist.Name, "checkpoints");
        var missing = Path.Combine(checkpoints, "run-1", "e0001-c0001.ckpt");
        File.Delete(missing);
        var corrupt = Path.Combine(checkpoints, "run-2", "e0000-c0001.ckpt");
        File.WriteAllBytes(corrupt, File.ReadAllBytes(corrupt)[..100]);

        using var experiment = Experiment.Open(EvaluatedMnist.Name, copy);
        var final = await experiment.RunTestAsync();
        Assert.Equal($"run 1's final checkpoint ({missing}) is missing", final.Runs[0].Error);
        Assert.Null(final.Runs[1].Error);
        Assert.False(File.Exists(Path.Combine(experiment.Path, "test", "run-1.csv")));
        Assert.True(File.Exists(Path.Combine(experiment.Path, "test", "run-2.csv")));
        var summary = File.ReadAllLines(Path.Combine(experiment.Path, "test", "summary.csv"));
        Assert.EndsWith(",error", summary[0]);
        Assert.Contains("is missing", summary[1]);

        var first = await experiment.RunPredictAsync(new PredictOptions(Checkpoint: CheckpointChoice.AtEpoch(1)));
        Assert.Null(first.Runs[0].Error);
        Assert.StartsWith($"run 2: checkpoint '{corrupt}' is corrupt: truncated", first.Runs[1].Error);
        Assert.Contains($"predict with run 2 failed: run 2: checkpoint '{corrupt}' is corrupt", File.ReadAllText(Path.Combine(experiment.Path, "experiment.log")));
    }

    [Fact]
    public void The_test_and_predict_verbs_print_a_table_per_run()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = RapidFireCli.Run(["test", "--experiment", EvaluatedMnist.Name, "--dir", mnist.Directory, "--checkpoint", "epoch:1"], stdout, stderr);
        var output = stdout.ToString();
        Assert.True(code == 0, stderr.ToString() + output);
        Assert.Matches(@"│ run │ checkpoint\s+│ epoch │ test loss │ test top1_accuracy │ test recall_8 │", output);
        Assert.Matches(@"│ 2\s+│ epoch:1 \(e0000-c0001\.ckpt\) │\s+1 │\s+[0-9.]+ │", output);
        Assert.Contains($"test results: {Path.Combine(mnist.Directory, EvaluatedMnist.Name, "test")}", output);

        stdout = new StringWriter();
        code = RapidFireCli.Run(["predict", "--experiment", EvaluatedMnist.Name, "--dir", mnist.Directory, "--runs", "2", "--format", "parquet"], stdout, stderr);
        output = stdout.ToString();
        Assert.True(code == 0, stderr.ToString() + output);
        Assert.Matches(@"│ 2\s+│ final \(e0001-c0001\.ckpt\) │\s+2 │\s+15 │ id, logits_0\.\.logits_9, predictions │ .*run-2\.parquet", output);
        Assert.DoesNotMatch(@"│ 1\s+│", output);

        stderr = new StringWriter();
        Assert.Equal(RapidFireCli.InvalidInput, RapidFireCli.Run(["test", "--experiment", EvaluatedMnist.Name, "--dir", mnist.Directory,
            "--checkpoint", "best"], new StringWriter(), stderr));
        Assert.Contains("error: checkpoint 'best' is not one of final, best:<metric>", stderr.ToString());
        stdout = new StringWriter();
        stderr = new StringWriter();
        Assert.Equal(RapidFireCli.Ok, RapidFireCli.Run(["test", "--experiment", EvaluatedMnist.Name, "--dir", mnist.Directory,
            "--checkpoint", "epoch:3", "--runs", "1"], stdout, stderr));
        Assert.Matches(@"│ 1\s+│ epoch:3\s+│\s+- │ failed │", stdout.ToString());
        Assert.Contains("error: run 1 has no checkpoint at the end of epoch 3 (it trained 2 epochs)", stderr.ToString());
        stderr = new StringWriter();
        Assert.Equal(EvaluateCommand.CouldNotRun, RapidFireCli.Run(["predict", "--experiment", "nope", "--dir", mnist.Directory], new StringWriter(), stderr));
        Assert.Contains("there is no experiment nope", stderr.ToString());
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in System.IO.Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            System.IO.Directory.CreateDirectory(dir.Replace(from, to, StringComparison.Ordinal));
        System.IO.Directory.CreateDirectory(to);
        foreach (var file in System.IO.Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, file.Replace(from, to, StringComparison.Ordinal));
    }
}
