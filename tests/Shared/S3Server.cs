using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using RapidFire.Spec.Data.S3;

namespace RapidFire.Tests;

/// <summary>
/// A real local S3 server for tests: the npm package <c>s3rver</c> (3.7.1), run by Node on a free port of 127.0.0.1
/// (<c>--port 0</c>: it prints the port it bound) over a temp folder, stopped and deleted on dispose. Use it as an
/// <c>IClassFixture&lt;S3Server&gt;</c>; give each test its own bucket (<see cref="CreateBucketAsync"/>).
/// </summary>
/// <remarks>
/// <c>bash scripts/test.sh</c> installs s3rver into <c>.tools/node_modules</c> of the checkout (ignored by git);
/// <c>RAPIDFIRE_S3RVER</c> may name its <c>bin/s3rver.js</c> elsewhere. A missing s3rver or Node fails the test, saying
/// how to install it. s3rver accepts the credentials <see cref="AccessKey"/> / <see cref="SecretKey"/>; an unknown
/// access key id is refused with 403 <c>InvalidAccessKeyId</c>.
/// </remarks>
public sealed class S3Server : IAsyncLifetime, IDisposable
{
    /// <summary>The access key id s3rver accepts.</summary>
    public const string AccessKey = "S3RVER";

    /// <summary>The secret key s3rver accepts.</summary>
    public const string SecretKey = "S3RVER";

    /// <summary>The version scripts/test.sh installs.</summary>
    public const string Version = "3.7.1";

    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    private static int buckets;
    private readonly StringBuilder log = new();
    private Process? server;
    private string? root;

    /// <summary>The server's URL, <c>http://127.0.0.1:PORT</c>.</summary>
    public string Endpoint { get; private set; } = "";

    /// <summary>A client with the server's credentials.</summary>
    public AmazonS3Client Client { get; private set; } = null!;

    /// <summary>What the server printed so far.</summary>
    public string ServerLog
    {
        get { lock (log) return log.ToString(); }
    }

    /// <summary>Settings that reach this server with its credentials, caching under <paramref name="cacheDirectory"/>.</summary>
    public S3Settings Settings(string cacheDirectory, int maxConcurrency = S3Settings.DefaultMaxConcurrency) => new()
    {
        Endpoint = Endpoint,
        CacheDirectory = cacheDirectory,
        MaxConcurrency = maxConcurrency,
        Credentials = new BasicAWSCredentials(AccessKey, SecretKey),
    };

    /// <summary>The same settings in HOCON (for an experiment's config).</summary>
    public string Hocon(string cacheDirectory, string? checkpoints = null) => $$"""
        rapidfire.s3 { endpoint = "{{Endpoint}}", cache-dir = "{{cacheDirectory.Replace("\\", "\\\\")}}", access-key-id = "{{AccessKey}}", secret-access-key = "{{SecretKey}}" }
        {{(checkpoints is null ? "" : $"rapidfire.checkpoints.location = \"{checkpoints}\"")}}
        """;

    /// <summary>Starts s3rver; returns once it listens.</summary>
    public async Task InitializeAsync()
    {
        var script = FindScript();
        root = Directory.CreateTempSubdirectory("rapidfire-s3rver-").FullName;
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 (Node 17 and later) keeps in its legacy provider.
        foreach (var arg in new[] { "--openssl-legacy-provider", script, "--directory", root, "--port", "0", "--address", "127.0.0.1", "--silent", "--no-vhost-buckets" })
            start.ArgumentList.Add(arg);
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            server = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Node.js (node) is needed to run the S3 test server s3rver: {e.Message}. `bash scripts/test.sh` installs it (Debian package 'nodejs').", e);
        }
        AppDomain.CurrentDomain.ProcessExit += StopOnExit;
        void Take(string? line)
        {
            if (line is null) return;
            lock (log) log.AppendLine(line);
            var match = Regex.Match(line, @"listening on ([0-9.]+):([0-9]+)");
            if (match.Success) listening.TrySetResult($"http://{match.Groups[1].Value}:{match.Groups[2].Value}");
        }
        server.OutputDataReceived += (_, e) => Take(e.Data);
        server.ErrorDataReceived += (_, e) => Take(e.Data);
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        var exited = server.WaitForExitAsync();
        var first = await Task.WhenAny(listening.Task, exited, Task.Delay(ReadyTimeout));
        if (first != listening.Task)
        {
            Dispose();
            throw new InvalidOperationException($"s3rver did not start listening ({(first == exited ? "it exited" : $"{ReadyTimeout.TotalSeconds} s passed")}):\n{ServerLog}");
        }
        Endpoint = await listening.Task;
        Client = new AmazonS3Client(new BasicAWSCredentials(AccessKey, SecretKey), new AmazonS3Config
        {
            ServiceURL = Endpoint,
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        });
    }

    /// <summary>Creates a bucket with a unique name starting with <paramref name="prefix"/> and returns its name.</summary>
    public async Task<string> CreateBucketAsync(string prefix = "bucket")
    {
        var name = $"{prefix}-{Interlocked.Increment(ref buckets)}-{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 14, 63)].ToLowerInvariant().TrimEnd('-');
        await Client.PutBucketAsync(name);
        return name;
    }

    /// <summary>Uploads bytes (not aws-chunked: s3rver would keep the chunk framing); returns the ETag.</summary>
    public async Task<string> PutAsync(string bucket, string key, byte[] content)
    {
        var response = await Client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = bucket,
            Key = key,
            InputStream = new MemoryStream(content),
            UseChunkEncoding = false,
        });
        return response.ETag;
    }

    /// <summary>Uploads text (UTF-8).</summary>
    public Task<string> PutAsync(string bucket, string key, string content) => PutAsync(bucket, key, Encoding.UTF8.GetBytes(content));

    /// <summary>Uploads every file below <paramref name="folder"/> as <c>{prefix}{relative path}</c>, 16 at a time.</summary>
    public async Task UploadFolderAsync(string folder, string bucket, string prefix, Func<string, bool>? include = null)
    {
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => (File: f, Key: prefix + Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/')))
            .Where(f => include?.Invoke(f.Key[prefix.Length..]) ?? true)
            .ToList();
        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (f, _) => await PutAsync(bucket, f.Key, await File.ReadAllBytesAsync(f.File)));
    }

    /// <summary>Every key in a bucket below <paramref name="prefix"/>.</summary>
    public async Task<List<string>> KeysAsync(string bucket, string prefix = "")
    {
        var keys = new List<string>();
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        while (true)
        {
            var page = await Client.ListObjectsV2Async(request);
            keys.AddRange((page.S3Objects ?? []).Select(o => o.Key));
            if (page.IsTruncated != true) return keys;
            request.ContinuationToken = page.NextContinuationToken;
        }
    }

    /// <summary>Stops the server and deletes its folder.</summary>
    public Task DisposeAsync()
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Stops the server and deletes its folder.</summary>
    public void Dispose()
    {
        AppDomain.CurrentDomain.ProcessExit -= StopOnExit;
        Client?.Dispose();
        if (server is { } process)
        {
            try
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
            server = null;
        }
        if (root is not null && Directory.Exists(root))
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
            root = null;
        }
    }

    private void StopOnExit(object? sender, EventArgs e) => Dispose();

    /// <summary>s3rver's entry script: <c>RAPIDFIRE_S3RVER</c>, else <c>.tools/node_modules/s3rver/bin/s3rver.js</c> of the checkout.</summary>
    public static string FindScript()
    {
        if (Environment.GetEnvironmentVariable("RAPIDFIRE_S3RVER") is { Length: > 0 } configured)
            return File.Exists(configured) ? configured : throw new InvalidOperationException($"RAPIDFIRE_S3RVER names {configured}, which does not exist");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "RapidFire.sln"))) continue;
            var script = Path.Combine(dir.FullName, ".tools", "node_modules", "s3rver", "bin", "s3rver.js");
            if (File.Exists(script)) return script;
            throw new InvalidOperationException(
                $"the S3 test server s3rver is not installed ({script} is missing). `bash scripts/test.sh` installs it; or run " +
                $"`npm install --prefix {Path.Combine(dir.FullName, ".tools")} s3rver@{Version}` (Node.js and npm: Debian packages 'nodejs' and 'npm').");
        }
        throw new InvalidOperationException($"no RapidFire.sln above {AppContext.BaseDirectory}: set RAPIDFIRE_S3RVER to s3rver's bin/s3rver.js");
    }
}
