using System.Collections.Concurrent;
using Akka.Configuration;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Runs;
using RapidFire.Host.Cli;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Progress;
using RapidFire.Tests;

namespace RapidFire.Host.Tests;

/// <summary>
/// A slice of the MNIST example on a real local S3 server (s3rver): <c>s3://BUCKET/mnist/{train,validation}.csv</c>
/// (the first 300 and 100 rows) and the images they name, with a data handle of <c>s3://</c> locators.
/// </summary>
public sealed class S3Mnist : IAsyncLifetime
{
    public const int TrainRows = 300;
    public const int ValidationRows = 100;

    public S3Server Server { get; } = new();

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("rf-s3fit-").FullName;

    public string Bucket { get; private set; } = "";

    public string HandlePath => Path.Combine(Directory, "handle.json");

    public string ConfigPath => Path.Combine(Directory, "configs.json");

    public string Experiments => Path.Combine(Directory, "experiments");

    public string Cache => Path.Combine(Directory, "cache");

    /// <summary>The experiment settings: this server, its credentials, the test's cache; checkpoints on S3 when given.</summary>
    public Config Settings(string? checkpoints = null, string? cache = null) => ConfigurationFactory.ParseString(Server.Hocon(cache ?? Cache, checkpoints));

    public async Task InitializeAsync()
    {
        await Server.InitializeAsync();
        Bucket = await Server.CreateBucketAsync("mnist");
        var data = RepoPaths.MnistExample("data");
        var images = new List<string>();
        foreach (var (name, rows) in new[] { ("train.csv", TrainRows), ("validation.csv", ValidationRows) })
        {
            var lines = File.ReadLines(Path.Combine(data, name)).Take(rows + 1).ToList();
            images.AddRange(lines.Skip(1).Select(l => l.Split(',')[1]));
            await Server.PutAsync(Bucket, $"mnist/{name}", string.Join('\n', lines) + "\n");
        }
        await Parallel.ForEachAsync(images, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (image, _) => await Server.PutAsync(Bucket, $"mnist/{image}", await File.ReadAllBytesAsync(Path.Combine(data, image))));
        File.WriteAllText(HandlePath, $$"""
            { "locators": { "train": "s3://{{Bucket}}/mnist/train.csv", "validation": "s3://{{Bucket}}/mnist/validation.csv",
                            "objects": "s3://{{Bucket}}/mnist" },
              "download_columns": ["filepath"] }
            """);
        File.WriteAllText(ConfigPath, """
            { "user_knobs": { "model_type": "mlp", "hidden": [16, 32] },
              "train": { "epochs": 2, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);
    }

    public Task DisposeAsync()
    {
        Server.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>Fits whose ESFs, images and checkpoints are all on S3; and what bad S3 input does.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class S3FitTests(S3Mnist mnist) : IClassFixture<S3Mnist>
{
    private static SpecSource Spec => SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs"));

    [Fact]
    public async Task An_mnist_fit_reads_its_esfs_and_images_from_s3_and_writes_its_checkpoints_to_s3()
    {
        var checkpoints = $"s3://{mnist.Bucket}/checkpoints";
        var events = new ConcurrentQueue<ExperimentEvent>();
        FitResult result;
        string path;
        var cache = Path.Combine(mnist.Directory, "fresh-cache"); // other tests fill the shared one
        using (var experiment = new Experiment("on-s3", mnist.Experiments, mnist.Settings(checkpoints, cache)))
        {
            experiment.Progress += events.Enqueue;
            path = experiment.Path;
            result = await experiment.RunFitAsync(Spec, ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));
            Assert.Equal($"{checkpoints}/on-s3/run-1/e0001-c0001.ckpt", experiment.Checkpoints.Describe(new CheckpointRef(1, 1, 1)));
            experiment.End();
        }

        Assert.All(result.Runs, r => Assert.Equal((RunStatus.Completed, EndReason.Epochs), (r.Status, r.EndedBy)));
        Assert.All(result.Runs, r => Assert.InRange(r.ValidationHistory[^1]["top1_accuracy"], 0.3, 1.0));

        // Test and predict read the S3 checkpoints and S3 data: testing on the validation rows gives the validation metrics.
        var onValidation = DataHandle.FromJson($$"""
            { "locators": { "test": "s3://{{mnist.Bucket}}/mnist/validation.csv", "predict": "s3://{{mnist.Bucket}}/mnist/validation.csv",
                            "objects": "s3://{{mnist.Bucket}}/mnist" }, "download_columns": ["filepath"] }
            """, mnist.Directory);
        var artifacts = ConfigurationFactory.ParseString($"rapidfire.artifacts.location = \"s3://{mnist.Bucket}/artifacts\"");
        using (var opened = Experiment.Open("on-s3", mnist.Experiments, artifacts.WithFallback(mnist.Settings(checkpoints, cache))))
        {
            var test = await opened.RunTestAsync(new Evaluation.TestOptions(Data: onValidation));
            Assert.Equal([1, 2], test.Runs.Select(r => r.RunId));
            Assert.All(test.Runs, r => Assert.Equal(result.Runs[r.RunId - 1].ValidationHistory[^1]["top1_accuracy"], r.Metrics["top1_accuracy"]));
            var predict = await opened.RunPredictAsync(new Evaluation.PredictOptions(Data: onValidation));
            Assert.All(predict.Runs, r => Assert.Equal(S3Mnist.ValidationRows, r.Rows));
        }
        // Their outputs were also uploaded to the artifacts location.
        Assert.Equal(["artifacts/on-s3/predict/run-1.csv", "artifacts/on-s3/predict/run-2.csv", "artifacts/on-s3/test/run-1.csv",
                "artifacts/on-s3/test/run-2.csv", "artifacts/on-s3/test/summary.csv"],
            (await mnist.Server.KeysAsync(mnist.Bucket, "artifacts/")).Order());

        var keys = await mnist.Server.KeysAsync(mnist.Bucket, "checkpoints/on-s3/");
        foreach (var run in new[] { 1, 2 })
            Assert.Contains($"checkpoints/on-s3/run-{run}/e0001-c0001.ckpt", keys); // the final checkpoint of each run
        Assert.False(Directory.Exists(Path.Combine(path, "checkpoints")));
        Assert.Contains($"checkpoints in {checkpoints}/on-s3", File.ReadAllText(Path.Combine(path, "experiment.log")));

        // The images were downloaded once, in parallel, and reported as download progress.
        var downloads = events.OfType<ProgressReported>().Select(e => e.Update).Where(u => u.Activity == ProgressActivity.Download).ToList();
        var images = downloads.Where(u => u.Task == $"download s3://{mnist.Bucket}/mnist" && u.Finished).ToList();
        Assert.NotEmpty(images);
        Assert.All(images, u => Assert.Equal(u.Total, u.Done));
        Assert.Contains(downloads, u => u.Task == $"download s3://{mnist.Bucket}/mnist/train.csv" && u.Finished);
        var cached = Directory.GetFiles(Path.Combine(cache, new Uri(mnist.Server.Endpoint).Host + "_" + new Uri(mnist.Server.Endpoint).Port,
            mnist.Bucket, "mnist", "images"));
        Assert.InRange(cached.Length, S3Mnist.TrainRows, S3Mnist.TrainRows + S3Mnist.ValidationRows);
    }

    [Fact]
    public async Task A_fit_killed_while_it_trains_resumes_from_its_s3_checkpoints_with_the_endpoint_given_on_the_command_line()
    {
        var settings = Path.Combine(mnist.Directory, "s3-kill.conf");
        // The endpoint comes from --s3-endpoint; the checkpoint location only from the fit's settings (the resume finds it recorded).
        File.WriteAllText(settings, $$"""
            rapidfire.s3 { cache-dir = "{{mnist.Cache}}", access-key-id = "{{S3Server.AccessKey}}", secret-access-key = "{{S3Server.SecretKey}}" }
            rapidfire.checkpoints.location = "s3://{{mnist.Bucket}}/killed"
            """);
        var resumeSettings = Path.Combine(mnist.Directory, "s3-resume.conf");
        File.WriteAllText(resumeSettings, $$"""
            rapidfire.s3 { cache-dir = "{{mnist.Cache}}", access-key-id = "{{S3Server.AccessKey}}", secret-access-key = "{{S3Server.SecretKey}}" }
            """);
        var configs = Path.Combine(mnist.Directory, "long.json");
        File.WriteAllText(configs, """
            { "user_knobs": { "model_type": "mlp", "hidden": [16, 32] },
              "train": { "epochs": 6, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
              "named_metrics": ["top1_accuracy"] }
            """);

        string name = "";
        for (var attempt = 1; ; attempt++)
        {
            name = $"killed{attempt}";
            using var child = ChildCli.Start("fit", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", mnist.HandlePath, "--config", configs,
                "--experiment", name, "--dir", mnist.Experiments, "--chunks", "3", "--settings", settings, "--s3-endpoint", mnist.Server.Endpoint);
            async Task<bool> TwoEach()
            {
                var keys = await mnist.Server.KeysAsync(mnist.Bucket, $"killed/{name}/");
                return keys.Count(k => k.Contains("/run-1/")) >= 2 && keys.Count(k => k.Contains("/run-2/")) >= 2;
            }
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (!await TwoEach() && !child.HasExited && DateTime.UtcNow < deadline) await Task.Delay(20);
            child.Kill();
            if (!File.Exists(Path.Combine(mnist.Experiments, name, "runs.csv"))) break;
            Assert.True(attempt < 3, "the fit kept finishing before it could be killed: " + child.Output);
        }
        var experiment = Path.Combine(mnist.Experiments, name);
        Assert.Contains($"s3://{mnist.Bucket}/killed", File.ReadAllText(Path.Combine(experiment, "storage.json")));

        var (code, output) = await ChildCli.RunAsync("resume", "--experiment", name, "--dir", mnist.Experiments,
            "--settings", resumeSettings, "--s3-endpoint", mnist.Server.Endpoint);
        Assert.True(code == 0, output);
        var runs = File.ReadAllLines(Path.Combine(experiment, "runs.csv")).Skip(1).ToList();
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.StartsWith("Completed,epochs,6,", r[(r.IndexOf(',') + 1)..]));
        var log = File.ReadAllText(Path.Combine(experiment, "experiment.log"));
        Assert.Matches("run 1 recovered: Ongoing, [1-9][0-9]* chunks trained", log);
        Assert.DoesNotContain("starts over", log);   // each run went on from its newest S3 checkpoint
        Assert.False(Directory.Exists(Path.Combine(experiment, "checkpoints")));
        var keys = await mnist.Server.KeysAsync(mnist.Bucket, $"killed/{name}/run-1/");
        Assert.Contains($"killed/{name}/run-1/e0005-c0002.ckpt", keys);
    }

    [Fact]
    public async Task A_missing_object_file_on_s3_fails_only_the_runs_that_read_its_row_naming_the_id_and_the_s3_path()
    {
        var rows = File.ReadLines(RepoPaths.MnistExample("data/train.csv")).Take(41).ToList();
        var missing = rows[6].Split(',');
        rows[6] = $"{missing[0]},images/not-uploaded.png,{missing[2]}";
        await mnist.Server.PutAsync(mnist.Bucket, "broken/train.csv", string.Join('\n', rows) + "\n");
        var handle = DataHandle.FromJson($$"""
            { "locators": { "train": "s3://{{mnist.Bucket}}/broken/train.csv", "objects": "s3://{{mnist.Bucket}}/mnist" }, "download_columns": ["filepath"] }
            """, mnist.Directory);

        using var experiment = new Experiment("missing-object", mnist.Experiments, mnist.Settings());
        var result = await experiment.RunFitAsync(Spec, ConfigGroup.Load(mnist.ConfigPath), handle);

        Assert.All(result.Runs, run =>
        {
            Assert.Equal(RunStatus.Failed, run.Status);
            Assert.Equal(("RowPrep", long.Parse(missing[0])), (run.Failure!.Method, run.Failure.RowId));
            Assert.Contains($"id {missing[0]}, column 'filepath' object file 'images/not-uploaded.png' could not be downloaded: " +
                            $"not found: no object s3://{mnist.Bucket}/mnist/images/not-uploaded.png (NoSuchKey)", run.Failure.Message);
        });
    }

    private (int Code, string Out, string Err) Validate(string handle, params string[] more)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = RapidFireCli.Run(["validate", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", handle,
            "--config", mnist.ConfigPath, "--s3-endpoint", mnist.Server.Endpoint, .. more], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string Settings(string name, string accessKey)
    {
        var path = Path.Combine(mnist.Directory, name);
        File.WriteAllText(path, $$"""rapidfire.s3 { cache-dir = "{{mnist.Cache}}", access-key-id = "{{accessKey}}", secret-access-key = "{{S3Server.SecretKey}}" }""");
        return path;
    }

    private string Handle(string name, string train)
    {
        var path = Path.Combine(mnist.Directory, name);
        File.WriteAllText(path, $$"""{ "locators": { "train": "{{train}}", "objects": "s3://{{mnist.Bucket}}/mnist" }, "download_columns": ["filepath"] }""");
        return path;
    }

    [Fact]
    public void Validate_reads_an_s3_data_handle_and_names_the_bucket_and_key_of_what_is_missing_or_refused()
    {
        var good = Settings("good.conf", S3Server.AccessKey);
        var (code, output, errors) = Validate(mnist.HandlePath, "--settings", good);
        Assert.True(code == 0, errors);
        Assert.Contains($"train {S3Mnist.TrainRows} rows, validation {S3Mnist.ValidationRows} rows", errors);
        Assert.StartsWith("run 1:", output);

        (code, _, errors) = Validate(Handle("nobucket.json", "s3://no-such-bucket-rf/train.csv"), "--settings", good);
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains("s3://no-such-bucket-rf/train.csv: bucket 'no-such-bucket-rf' does not exist (s3://no-such-bucket-rf/train.csv)", errors);

        (code, _, errors) = Validate(Handle("nokey.json", $"s3://{mnist.Bucket}/mnist/nope.csv"), "--settings", good);
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Contains($"s3://{mnist.Bucket}/mnist/nope.csv: not found: no object s3://{mnist.Bucket}/mnist/nope.csv (NoSuchKey)", errors);

        (code, _, errors) = Validate(mnist.HandlePath, "--settings", Settings("wrong.conf", "NOT-A-KEY-ID"));
        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.True(errors.Contains($"access denied to s3://{mnist.Bucket}/mnist/train.csv (InvalidAccessKeyId: the credentials are wrong"), errors);
        Assert.DoesNotContain(S3Server.SecretKey + "\"", errors);
    }
}
