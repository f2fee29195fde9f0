using System.Collections.Concurrent;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;
using RapidFire.Spec.Progress;
using RapidFire.Tests;

namespace RapidFire.Spec.Tests.Data;

/// <summary>Data handles on a real local S3 server (s3rver): ESFs, object columns, misc folders, the cache and the errors.</summary>
public sealed class S3DataStorageTests(S3Server s3) : IClassFixture<S3Server>, IDisposable
{
    private const int Objects = 120;
    private readonly TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    private string Cache => folder["cache"];

    /// <summary>A bucket with <c>data/train.csv</c> naming <see cref="Objects"/> object files <c>data/images/NNN.bin</c> (and one missing file when asked).</summary>
    private async Task<(string Bucket, DataHandle Handle)> UploadAsync(bool withMissingFile = false)
    {
        var bucket = await s3.CreateBucketAsync("objects");
        var csv = new StringBuilder("id,filepath,label\n");
        for (var i = 0; i < Objects; i++)
        {
            await s3.PutAsync(bucket, $"data/images/{i:D3}.bin", Content(i, "v1"));
            csv.Append($"{i},images/{i:D3}.bin,{i % 10}\n");
        }
        if (withMissingFile) csv.Append($"{Objects},images/missing.bin,0\n");
        await s3.PutAsync(bucket, "data/train.csv", csv.ToString());
        var handle = DataHandle.FromJson($$"""
            { "locators": { "train": "s3://{{bucket}}/data/train.csv", "objects": "s3://{{bucket}}/data" }, "download_columns": ["filepath"] }
            """, folder.Path);
        return (bucket, handle);
    }

    private static byte[] Content(int i, string version) => Encoding.UTF8.GetBytes($"object {i} {version} " + new string('x', 2000 + i));

    /// <summary>A storage whose client counts its HTTP requests and the most that were in flight at once.</summary>
    private (S3DataStorage Storage, CountingHandler Http) Counting(int maxConcurrency, IProgress<ProgressUpdate>? progress = null)
    {
        var settings = s3.Settings(Cache, maxConcurrency);
        var http = new CountingHandler();
        var config = settings.CreateConfig();
        config.HttpClientFactory = new CountingFactory(http);
        var client = new AmazonS3Client(settings.Credentials, config);
        return (new S3DataStorage(client, settings, progress), http);
    }

    [Fact]
    public async Task Object_files_download_in_parallel_into_the_cache_are_reused_on_a_second_read_and_downloaded_again_when_changed()
    {
        var (bucket, handle) = await UploadAsync();
        var updates = new ConcurrentQueue<ProgressUpdate>();

        var (first, http) = Counting(maxConcurrency: 8, new SyncProgress(updates.Enqueue));
        var table = handle.Open(Mode.Train, first);
        Assert.Equal(Objects, table.RowCount);
        Assert.Equal(1 + Objects, first.Statistics.Gets);                // the ESF and every object
        Assert.InRange(http.MaxInFlight, 2, 8);                           // in parallel, at most max-concurrency at once
        var path = table[7].GetPath("filepath");
        Assert.Equal(Path.Combine(first.CacheDirectory, bucket, "data", "images", "007.bin"), path);
        Assert.Equal(Content(7, "v1"), File.ReadAllBytes(path));
        var last = updates.Last(u => u.Task == $"download s3://{bucket}/data");
        Assert.Equal((ProgressActivity.Download, Objects, (long?)Objects, true), (last.Activity, last.Done, last.Total, last.Finished));
        Assert.Contains($"{Objects}/{Objects} objects", last.Detail);
        first.Dispose();

        // Another storage over the same cache (another experiment, another process): nothing is downloaded again.
        var written = File.GetLastWriteTimeUtc(path);
        var (second, http2) = Counting(maxConcurrency: 8);
        table = second.Open(handle, Mode.Train);
        Assert.Equal(0, second.Statistics.Gets);
        Assert.Equal(0, http2.Count("GET", "/data/images/"));
        Assert.Equal(1 + Objects, second.Statistics.CacheHits);
        Assert.InRange(second.Statistics.Lists, 1, 3);                   // one listing of the key range, not a request per object
        Assert.Equal(written, File.GetLastWriteTimeUtc(table[7].GetPath("filepath")));
        second.Dispose();

        // Changed objects have new ETags: only they are downloaded again.
        foreach (var i in new[] { 3, 50, 119 }) await s3.PutAsync(bucket, $"data/images/{i:D3}.bin", Content(i, "v2"));
        var (third, _) = Counting(maxConcurrency: 8);
        table = third.Open(handle, Mode.Train);
        Assert.Equal(3, third.Statistics.Gets);
        Assert.Equal(Content(50, "v2"), File.ReadAllBytes(table[50].GetPath("filepath")));
        Assert.Equal(Content(51, "v1"), File.ReadAllBytes(table[51].GetPath("filepath")));
        third.Dispose();
    }

    [Fact]
    public async Task A_changed_esf_is_downloaded_again_and_an_unchanged_one_is_read_from_the_cache()
    {
        var bucket = await s3.CreateBucketAsync("esf");
        await s3.PutAsync(bucket, "t.csv", "id,x\n1,2\n");
        var handle = DataHandle.FromJson($$"""{ "locators": { "train": "s3://{{bucket}}/t.csv" }, "download_columns": [] }""", folder.Path);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        Assert.Equal(1, handle.Open(Mode.Train, storage).RowCount);
        Assert.Equal(1, handle.Open(Mode.Train, storage).RowCount);
        Assert.Equal((1L, 1L), (storage.Statistics.Gets, storage.Statistics.CacheHits));
        await s3.PutAsync(bucket, "t.csv", "id,x\n1,2\n2,3\n");
        Assert.Equal(2, handle.Open(Mode.Train, storage).RowCount);
        Assert.Equal(2, storage.Statistics.Gets);
    }

    [Fact]
    public async Task A_missing_object_file_fails_only_the_rows_naming_it_with_the_id_and_the_s3_path()
    {
        var (bucket, handle) = await UploadAsync(withMissingFile: true);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        var table = handle.Open(Mode.Train, storage);
        Assert.True(File.Exists(table[0].GetPath("filepath")));
        var error = Assert.Throws<DataException>(() => table[Objects].GetPath("filepath"));
        Assert.Equal($"s3://{bucket}/data/train.csv row {Objects + 1}: id {Objects}, column 'filepath' object file 'images/missing.bin' could not be downloaded: " +
                     $"not found: no object s3://{bucket}/data/images/missing.bin (NoSuchKey)", error.Message);
    }

    [Fact]
    public void A_missing_bucket_is_named_with_the_locator()
    {
        var handle = DataHandle.FromJson("""{ "locators": { "train": "s3://no-such-bucket-rf/esf/train.csv" } }""", folder.Path);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train, storage)).Errors);
        Assert.Equal("s3://no-such-bucket-rf/esf/train.csv", error.File);
        Assert.Equal("bucket 'no-such-bucket-rf' does not exist (s3://no-such-bucket-rf/esf/train.csv)", error.Message);
    }

    [Fact]
    public async Task A_missing_objects_bucket_fails_the_partition_naming_the_bucket()
    {
        var bucket = await s3.CreateBucketAsync("esf");
        await s3.PutAsync(bucket, "t.csv", "id,filepath\n1,a.png\n");
        var handle = DataHandle.FromJson($$"""
            { "locators": { "train": "s3://{{bucket}}/t.csv", "objects": "s3://no-such-bucket-rf/images" }, "download_columns": ["filepath"] }
            """, folder.Path);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        var error = Assert.Throws<DataException>(() => handle.Open(Mode.Train, storage)).Errors[0];
        Assert.Equal("s3://no-such-bucket-rf/images", error.File);
        Assert.Equal("objects locator: bucket 'no-such-bucket-rf' does not exist (s3://no-such-bucket-rf/images/)", error.Message);
    }

    [Fact]
    public async Task A_missing_esf_key_is_named_with_its_bucket_and_key()
    {
        var bucket = await s3.CreateBucketAsync("esf");
        var handle = DataHandle.FromJson($$"""{ "locators": { "train": "s3://{{bucket}}/nope/train.csv" } }""", folder.Path);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train, storage)).Errors);
        Assert.Equal($"s3://{bucket}/nope/train.csv: not found: no object s3://{bucket}/nope/train.csv (NoSuchKey)", error.ToString());
    }

    [Fact]
    public async Task Wrong_credentials_are_access_denied_to_the_bucket_and_key_and_never_printed()
    {
        var bucket = await s3.CreateBucketAsync("esf");
        await s3.PutAsync(bucket, "t.csv", "id,x\n1,2\n");
        var handle = DataHandle.FromJson($$"""{ "locators": { "train": "s3://{{bucket}}/t.csv" } }""", folder.Path);
        var settings = s3.Settings(Cache) with { Credentials = new BasicAWSCredentials("AKIAWRONGKEY", "a-wrong-secret-key") };
        using var storage = new S3DataStorage(settings);
        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train, storage)).Errors);
        Assert.StartsWith($"access denied to s3://{bucket}/t.csv (InvalidAccessKeyId: the credentials are wrong", error.Message);
        Assert.DoesNotContain("a-wrong-secret-key", error.Message);
        Assert.DoesNotContain("a-wrong-secret-key", settings.ToString());
        Assert.DoesNotContain("AKIAWRONGKEY", settings.ToString());
    }

    [Fact]
    public async Task A_misc_folder_is_downloaded_whole_and_given_as_a_local_folder()
    {
        var bucket = await s3.CreateBucketAsync("misc");
        await s3.PutAsync(bucket, "t.csv", "id,x\n1,2\n");
        await s3.PutAsync(bucket, "misc/vocab.txt", "a b c");
        await s3.PutAsync(bucket, "misc/nested/stats.json", "{}");
        var handle = DataHandle.FromJson($$"""{ "locators": { "train": "s3://{{bucket}}/t.csv", "misc": "s3://{{bucket}}/misc" } }""", folder.Path);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        var misc = handle.GetMiscPath(storage)!;
        Assert.Equal("a b c", File.ReadAllText(Path.Combine(misc, "vocab.txt")));
        Assert.Equal("{}", File.ReadAllText(Path.Combine(misc, "nested", "stats.json")));
        var empty = DataHandle.FromJson($$"""{ "locators": { "train": "s3://{{bucket}}/t.csv", "misc": "s3://{{bucket}}/nothing" } }""", folder.Path);
        Assert.Contains($"folder not found: no object below s3://{bucket}/nothing/", Assert.Throws<DataException>(() => empty.GetMiscPath(storage)).Message);
    }

    [Fact]
    public async Task Object_columns_are_detected_on_s3_like_local_ones()
    {
        var bucket = await s3.CreateBucketAsync("detect");
        await s3.PutAsync(bucket, "d/t.csv", "id,image,name\n1,img/a.png,cat\n");
        await s3.PutAsync(bucket, "d/img/a.png", "png");
        var handle = DataHandle.FromJson($$"""{ "locators": { "train": "s3://{{bucket}}/d/t.csv", "objects": "s3://{{bucket}}/d" } }""", folder.Path);
        using var storage = new S3DataStorage(s3.Settings(Cache));
        var table = handle.Open(Mode.Train, storage);
        Assert.Equal(["image"], table.ObjectColumns);
        Assert.Equal("png", File.ReadAllText(table[0].GetPath("image")));
    }

    [Fact]
    public void Settings_resolve_the_cache_and_endpoint_and_hide_credentials()
    {
        var settings = new S3Settings { Endpoint = "http://127.0.0.1:9000", CacheDirectory = "/tmp/c", Credentials = new BasicAWSCredentials("id", "very-secret") };
        Assert.Equal("127.0.0.1_9000", settings.EndpointId);
        Assert.Equal("/tmp/c", settings.ResolvedCacheDirectory);
        Assert.DoesNotContain("very-secret", settings.ToString());
        var config = settings.CreateConfig();
        Assert.True(config.ForcePathStyle);
        Assert.Equal(RequestChecksumCalculation.WHEN_REQUIRED, config.RequestChecksumCalculation);
        Assert.Equal(ResponseChecksumValidation.WHEN_REQUIRED, config.ResponseChecksumValidation);
        Assert.Equal("rapidfire.s3.max-concurrency: must be >= 1, got 0",
            Assert.Throws<ConfigException>(() => (settings with { MaxConcurrency = 0 }).Validated()).Message);
        Assert.Contains("rapidfire.s3.endpoint: must be an http:// or https:// URL",
            Assert.Throws<ConfigException>(() => (settings with { Endpoint = "ftp://x" }).Validated()).Message);
    }

    /// <summary>Reports on the reporting thread (Progress&lt;T&gt; would post to the thread pool, after the call returned).</summary>
    private sealed class SyncProgress(Action<ProgressUpdate> report) : IProgress<ProgressUpdate>
    {
        public void Report(ProgressUpdate value) => report(value);
    }

    private sealed class CountingFactory(CountingHandler handler) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) => new(handler, disposeHandler: false);

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => false;
    }

    /// <summary>Counts requests (method and path) and the most in flight at once.</summary>
    internal sealed class CountingHandler() : DelegatingHandler(new SocketsHttpHandler { MaxConnectionsPerServer = 64 })
    {
        private readonly ConcurrentQueue<(string Method, string Path)> requests = new();
        private int inFlight, maxInFlight;

        public int MaxInFlight => Volatile.Read(ref maxInFlight);

        public int Count(string method, string pathPrefix) =>
            requests.Count(r => r.Method == method && r.Path.Contains(pathPrefix, StringComparison.Ordinal));

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            requests.Enqueue((request.Method.Method, request.RequestUri?.AbsolutePath ?? ""));
            var now = Interlocked.Increment(ref inFlight);
            int seen;
            while (now > (seen = Volatile.Read(ref maxInFlight)) && Interlocked.CompareExchange(ref maxInFlight, now, seen) != seen) { }
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }
    }
}

internal static class S3StorageTestExtensions
{
    public static EsfTable Open(this S3DataStorage storage, DataHandle handle, Mode mode) => handle.Open(mode, storage);
}
