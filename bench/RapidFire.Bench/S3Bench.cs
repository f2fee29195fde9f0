using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using RapidFire.Host;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;

namespace RapidFire.Bench;

/// <summary>
/// The issue-7 benchmarks, on a local S3 server (s3rver, as the tests run it, from <c>.tools/</c>): object-download
/// throughput with 1 vs 16 concurrent downloads, and an MNIST fit with its data and checkpoints on S3 vs on local disk.
/// </summary>
public sealed class S3Bench : IDisposable
{
    private const string Key = "S3RVER";
    private readonly string repo;
    private readonly string data;
    private readonly int epochs;
    private readonly Process server;
    private readonly string work = Path.Combine(Path.GetTempPath(), "rapidfire-bench", $"s3-{Guid.NewGuid():N}");
    private readonly AmazonS3Client client;
    private readonly string bucket = "bench";

    public S3Bench(string repo, string data, int epochs)
    {
        this.repo = repo;
        this.data = data;
        this.epochs = epochs;
        Directory.CreateDirectory(work);
        var script = Path.Combine(repo, ".tools", "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script)) throw new FileNotFoundException($"s3rver is not installed: run `npm install --prefix {Path.Combine(repo, ".tools")} s3rver@3.7.1`", script);
        var start = new ProcessStartInfo("node") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--openssl-legacy-provider", script, "--directory", Path.Combine(work, "server"), "--port", "0", "--address", "127.0.0.1", "--silent" })
            start.ArgumentList.Add(arg);
        Directory.CreateDirectory(Path.Combine(work, "server"));
        server = Process.Start(start)!;
        string? line;
        while ((line = server.StandardOutput.ReadLine()) is not null && !line.Contains("listening on", StringComparison.Ordinal)) { }
        var match = Regex.Match(line ?? "", @"listening on ([0-9.]+):([0-9]+)");
        if (!match.Success) throw new InvalidOperationException("s3rver did not start: " + server.StandardError.ReadToEnd());
        Endpoint = $"http://{match.Groups[1].Value}:{match.Groups[2].Value}";
        client = Settings(Path.Combine(work, "unused")).CreateClient();
    }

    public string Endpoint { get; }

    private S3Settings Settings(string cache, int concurrency = S3Settings.DefaultMaxConcurrency) => new()
    {
        Endpoint = Endpoint,
        CacheDirectory = cache,
        MaxConcurrency = concurrency,
        Credentials = new BasicAWSCredentials(Key, Key),
    };

    /// <summary>Uploads the ESFs and every image they name to <c>s3://bench/mnist/</c>; returns the image paths of the train ESF.</summary>
    public async Task<List<string>> UploadAsync()
    {
        await client.PutBucketAsync(bucket);
        var clock = Stopwatch.StartNew();
        var images = new List<string>();
        foreach (var esf in new[] { "train.csv", "validation.csv" })
        {
            var lines = File.ReadAllLines(Path.Combine(data, esf));
            images.AddRange(lines.Skip(1).Select(l => l.Split(',')[1]));
            await Put($"mnist/{esf}", File.ReadAllBytes(Path.Combine(data, esf)));
        }
        await Parallel.ForEachAsync(images, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (image, _) => await Put($"mnist/{image}", await File.ReadAllBytesAsync(Path.Combine(data, image))));
        Console.WriteLine($"uploaded {images.Count:N0} images and 2 ESFs to {Endpoint} in {clock.Elapsed.TotalSeconds:0.0} s");
        Console.WriteLine();
        return images.Take(File.ReadAllLines(Path.Combine(data, "train.csv")).Length - 1).ToList();
    }

    private Task Put(string key, byte[] bytes) =>
        client.PutObjectAsync(new PutObjectRequest { BucketName = bucket, Key = key, InputStream = new MemoryStream(bytes), UseChunkEncoding = false });

    /// <summary>
    /// (g) PNGs into an empty cache, 1 vs 16 downloads at a time: 2,000 straight from the loopback server, and 400 with
    /// <paramref name="latencyMs"/> added to every request by the client (what a server across a network costs).
    /// </summary>
    public void Downloads(IReadOnlyList<string> trainImages, int reps, int count = 2000, int latencyMs = 10)
    {
        DownloadSides(trainImages.Take(count).ToList(), reps, 0);
        DownloadSides(trainImages.Take(count / 5).ToList(), reps, latencyMs);
    }

    private void DownloadSides(List<string> paths, int reps, int latencyMs)
    {
        var folder = new S3Locator(bucket, "mnist");
        var seconds = new Dictionary<int, List<double>> { [1] = [], [16] = [] };
        var megabytes = 0.0;
        var warm = new List<double>();
        long warmLists = 0;
        for (var rep = -1; rep < reps; rep++)
        {
            foreach (var concurrency in rep % 2 == 0 ? new[] { 16, 1 } : [1, 16])
            {
                var cache = Path.Combine(work, $"cache-{Guid.NewGuid():N}");
                var settings = Settings(cache, concurrency);
                var config = settings.CreateConfig();
                if (latencyMs > 0) config.HttpClientFactory = new DelayingFactory(TimeSpan.FromMilliseconds(latencyMs));
                using var client = new AmazonS3Client(settings.Credentials, config);
                using var storage = new S3DataStorage(client, settings);
                var clock = Stopwatch.StartNew();
                var failures = storage.FetchObjects(folder, paths);
                var elapsed = clock.Elapsed.TotalSeconds;
                if (failures.Count > 0) throw new InvalidOperationException($"{failures.Count} downloads failed: {failures.First().Value}");
                if (storage.Statistics.Gets != paths.Count) throw new InvalidOperationException($"{storage.Statistics.Gets} GETs for {paths.Count} objects");
                megabytes = storage.Statistics.BytesDownloaded / 1e6;
                if (concurrency == 16 && latencyMs == 0)
                {
                    // The same objects again, through a new storage over the now warm cache: ETags listed, nothing downloaded.
                    using var again = new S3DataStorage(client, settings);
                    var warmClock = Stopwatch.StartNew();
                    again.FetchObjects(folder, paths);
                    if (rep >= 0) warm.Add(warmClock.Elapsed.TotalSeconds);
                    warmLists = again.Statistics.Lists;
                    if (again.Statistics.Gets != 0) throw new InvalidOperationException($"{again.Statistics.Gets} GETs on a warm cache");
                }
                Directory.Delete(cache, recursive: true);
                if (rep >= 0) seconds[concurrency].Add(elapsed);
            }
        }
        Console.WriteLine($"## (g) object downloads: {paths.Count:N0} MNIST PNGs ({megabytes:0.00} MB) from the local S3 server into an empty cache" +
                          (latencyMs > 0 ? $", {latencyMs} ms added to every request" : ""));
        Console.WriteLine();
        Console.WriteLine("| concurrent downloads | median s | objects/s | MB/s | all runs s |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var (concurrency, list) in seconds)
        {
            var median = Bench.Median(list);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {concurrency} | {median:0.00} | {paths.Count / median:0} | {megabytes / median:0.00} | {string.Join(", ", list.Select(x => x.ToString("0.00", CultureInfo.InvariantCulture)))} |"));
        }
        Console.WriteLine();
        Console.WriteLine($"ratio throughput 16 / 1 = **{Bench.Median(seconds[1]) / Bench.Median(seconds[16]):0.000}**");
        if (warm.Count > 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"the same {paths.Count:N0} objects again over the warm cache: {Bench.Median(warm):0.000} s median ({string.Join(", ", warm.Select(x => x.ToString("0.000", CultureInfo.InvariantCulture)))}), " +
                $"{warmLists} listing requests, no GET"));
        Console.WriteLine();
    }

    /// <summary>(h) One CNN config, persistence on: data and checkpoints on local disk vs on S3 (empty cache, and warm cache).</summary>
    public async Task Fits(int reps)
    {
        var spec = Path.Combine(repo, "examples", "mnist", "MnistSpec.cs");
        SpecCompiler.CompileFile(spec);
        var local = DataHandle.Builder(data).Train("train.csv").Validation("validation.csv").Objects(".").DownloadColumns("filepath").Build();
        var remote = DataHandle.FromJson($$"""
            { "locators": { "train": "s3://{{bucket}}/mnist/train.csv", "validation": "s3://{{bucket}}/mnist/validation.csv", "objects": "s3://{{bucket}}/mnist" },
              "download_columns": ["filepath"] }
            """, work);
        var configs = new GridSearch(new ConfigTemplate
        {
            UserKnobs = new Dictionary<string, object?> { ["model_type"] = "cnn", ["hidden"] = 128 },
            Train = new TrainTemplate { Epochs = epochs, BatchSize = 64, Optimizer = new ComponentTemplate("Adam", new Dictionary<string, object?> { ["lr"] = 0.001 }) },
            NamedMetrics = ["top1_accuracy"],
        });
        var warmCache = Path.Combine(work, "warm-cache");
        Akka.Configuration.Config S3Config(string cache, bool checkpointsOnS3 = true) => Akka.Configuration.ConfigurationFactory.ParseString($$"""
            rapidfire.s3 { endpoint = "{{Endpoint}}", cache-dir = "{{cache}}", access-key-id = "{{Key}}", secret-access-key = "{{Key}}" }
            {{(checkpointsOnS3 ? $"rapidfire.checkpoints.location = \"s3://{bucket}/checkpoints\"" : "")}}
            """);
        async Task<double> Fit(DataHandle handle, Akka.Configuration.Config? config)
        {
            using var experiment = new Experiment($"s3fit-{Guid.NewGuid():N}"[..20], Path.Combine(work, "experiments"), config);
            var clock = Stopwatch.StartNew();
            var result = await experiment.RunFitAsync(SpecSource.FromFile(spec), configs, handle, new FitOptions(Chunks: 4, Devices: "cpu"));
            var elapsed = clock.Elapsed.TotalSeconds;
            if (result.Runs.Any(r => r.Status != RapidFire.Actors.Runs.RunStatus.Completed))
                throw new InvalidOperationException("a benchmark run did not complete: " + string.Join("; ", result.Runs.Select(r => r.Failure)));
            experiment.End();
            return elapsed;
        }
        var onDisk = new List<double>();
        var cold = new List<double>();
        var warm = new List<double>();
        var warmLocalCheckpoints = new List<double>();
        for (var rep = -1; rep < reps; rep++) // repetition -1 warms up (and fills the warm cache) and is not counted
        {
            var a = await Fit(local, null);
            var coldCache = Path.Combine(work, $"cold-{Guid.NewGuid():N}");
            var b = await Fit(remote, S3Config(coldCache));
            Directory.Delete(coldCache, recursive: true);
            var c = await Fit(remote, S3Config(warmCache));
            var d = await Fit(remote, S3Config(warmCache, checkpointsOnS3: false));
            if (rep < 0) continue;
            onDisk.Add(a);
            cold.Add(b);
            warm.Add(c);
            warmLocalCheckpoints.Add(d);
        }
        Bench.Table($"(h) an MNIST fit ({local.Open(Mode.Train).RowCount:N0} train, {local.Open(Mode.Validation).RowCount:N0} validation rows; 1 CNN config, " +
                    $"{epochs} epochs, 4 chunks, SQLite journal, a checkpoint per chunk): data and checkpoints on local disk vs on the local S3 server",
            "side", ("local disk", onDisk), ("S3, empty cache (every image downloaded)", cold), ("S3, warm cache (ETags listed, nothing downloaded)", warm),
            ("S3 data (warm cache), checkpoints on local disk", warmLocalCheckpoints));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ratio S3 empty cache / local disk = **{Bench.Median(cold) / Bench.Median(onDisk):0.000}**; S3 warm cache / local disk = **{Bench.Median(warm) / Bench.Median(onDisk):0.000}**; " +
            $"S3 data (warm), local checkpoints / local disk = {Bench.Median(warmLocalCheckpoints) / Bench.Median(onDisk):0.000}"));
        Console.WriteLine();
    }

    /// <summary>An HTTP client that waits before sending each request: network latency the loopback server lacks.</summary>
    private sealed class DelayingFactory(TimeSpan delay) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
            new(new DelayingHandler(delay) { InnerHandler = new SocketsHttpHandler { MaxConnectionsPerServer = 64 } });

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;
    }

    private sealed class DelayingHandler(TimeSpan delay) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(delay, cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }
    }

    public void Dispose()
    {
        client.Dispose();
        if (!server.HasExited) server.Kill(entireProcessTree: true);
        server.WaitForExit();
        server.Dispose();
        try { Directory.Delete(work, recursive: true); } catch (IOException) { }
    }
}
