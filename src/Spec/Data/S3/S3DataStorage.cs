using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Amazon.S3;
using Amazon.S3.Model;
using RapidFire.Spec.Progress;

namespace RapidFire.Spec.Data.S3;

/// <summary>Requests an <see cref="S3DataStorage"/> has made, and what it downloaded.</summary>
/// <param name="Gets">Objects downloaded (GET requests).</param>
/// <param name="Heads">Objects asked about (HEAD requests).</param>
/// <param name="Lists">Pages listed (ListObjectsV2 requests).</param>
/// <param name="BytesDownloaded">Bytes written to the cache.</param>
/// <param name="CacheHits">Objects found current in the cache (not downloaded).</param>
public sealed record S3Statistics(long Gets, long Heads, long Lists, long BytesDownloaded, long CacheHits);

/// <summary>
/// Data handle files on S3 (or an S3-compatible server), downloaded to a local cache and read from there; local
/// locators go to <see cref="LocalDataStorage"/>. ESFs, misc folders and models are downloaded whole when read;
/// object files only as rows need them (<see cref="FetchObjects"/>), in parallel, so that the MLSpec sees local
/// paths: <see cref="Row.GetPath"/> gives the cached copy.
/// </summary>
/// <remarks>
/// <para><b>The cache</b> (<see cref="S3ObjectCache"/>) is <c>{cache-dir}/{endpoint}/{bucket}/{key}</c>, reused across
/// runs, experiments and processes, keyed by bucket, key and ETag: an object whose ETag has not changed is never
/// downloaded again. Knowing the ETags of many cached objects takes one listing (1,000 keys a page) of the key range
/// they span rather than one request each.</para>
/// <para><b>Errors</b> are <see cref="DataException"/>s naming the locator: a missing bucket, a missing key, access
/// denied (wrong credentials: <c>InvalidAccessKeyId</c>, <c>SignatureDoesNotMatch</c>), an unreachable endpoint. An
/// object file that cannot be downloaded fails only the rows that name it (see <see cref="FetchObjects"/>).</para>
/// <para>Thread-safe. The S3 client is created on first use and disposed with the storage.</para>
/// </remarks>
public sealed class S3DataStorage : IDataStorage, IDisposable
{
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMilliseconds(200);
    private readonly Lazy<IAmazonS3> client;
    private readonly IProgress<ProgressUpdate>? progress;
    private readonly ConcurrentDictionary<(string Bucket, string Prefix), Lazy<DataException?>> probes = new();
    private long gets, heads, lists, bytes, hits;

    /// <summary>A storage with <paramref name="settings"/> (default: from the environment).</summary>
    /// <param name="settings">Endpoint, region, credentials, concurrency and cache folder.</param>
    /// <param name="progress">Receives download progress (<see cref="ProgressActivity.Download"/>), if given.</param>
    public S3DataStorage(S3Settings? settings = null, IProgress<ProgressUpdate>? progress = null)
    {
        Settings = (settings ?? S3Settings.Default).Validated();
        this.progress = progress;
        client = new Lazy<IAmazonS3>(Settings.CreateClient, LazyThreadSafetyMode.ExecutionAndPublication);
        Cache = new S3ObjectCache(Path.Combine(Settings.ResolvedCacheDirectory, Settings.EndpointId));
    }

    /// <summary>A storage over an existing client (not disposed with the storage).</summary>
    public S3DataStorage(IAmazonS3 client, S3Settings settings, IProgress<ProgressUpdate>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        Settings = settings.Validated();
        this.progress = progress;
        this.client = new Lazy<IAmazonS3>(() => client);
        OwnsClient = false;
        Cache = new S3ObjectCache(Path.Combine(Settings.ResolvedCacheDirectory, Settings.EndpointId));
    }

    /// <summary>The settings in use.</summary>
    public S3Settings Settings { get; }

    /// <summary>The S3 client (created on first use).</summary>
    public IAmazonS3 Client => client.Value;

    /// <summary>The cache folder of this storage's endpoint.</summary>
    public string CacheDirectory => Cache.Root;

    /// <summary>The requests made so far.</summary>
    public S3Statistics Statistics => new(Interlocked.Read(ref gets), Interlocked.Read(ref heads), Interlocked.Read(ref lists),
        Interlocked.Read(ref bytes), Interlocked.Read(ref hits));

    private S3ObjectCache Cache { get; }

    private bool OwnsClient { get; } = true;

    /// <summary>The local copy of an S3 object (where <see cref="OpenRead"/> and <see cref="FetchObjects"/> put it).</summary>
    public string LocalPath(S3Locator locator)
    {
        ArgumentNullException.ThrowIfNull(locator);
        return Cache.PathOf(locator.Bucket, locator.Key);
    }

    /// <inheritdoc />
    public Stream OpenRead(Locator file)
    {
        if (file is not S3Locator s3) return LocalDataStorage.Instance.OpenRead(file);
        var path = Run(s3, ct => EnsureCurrentAsync(s3, ct));
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
    }

    /// <inheritdoc />
    public bool FileExists(Locator file)
    {
        if (file is not S3Locator s3) return LocalDataStorage.Instance.FileExists(file);
        if (s3.Key.Length == 0 || s3.Key.EndsWith('/')) return false;
        try
        {
            Run(s3, ct => HeadAsync(s3.Bucket, s3.Key, ct));
            return true;
        }
        catch (DataException e) when (e.InnerException is { } inner && S3Errors.Classify(inner) == S3Errors.Kind.NotFound)
        {
            return false;
        }
    }

    /// <summary>
    /// For an S3 folder (a key prefix), downloads every object below it (those whose cached copy is stale) and returns
    /// the local copy of the folder: how a <c>misc</c> folder reaches <c>InitializeRun</c>.
    /// </summary>
    /// <exception cref="DataException">The bucket does not exist, no object lies below the prefix, or one cannot be downloaded.</exception>
    public string GetLocalDirectory(Locator folder)
    {
        if (folder is not S3Locator s3) return LocalDataStorage.Instance.GetLocalDirectory(folder);
        var prefix = FolderPrefix(s3);
        var listed = Run(s3, ct => ListAsync(s3.Bucket, prefix, ct));
        var files = listed.Where(o => !o.Key.EndsWith('/')).ToList();
        if (files.Count == 0)
            throw new DataException(s3.ToString(), null, $"folder not found: no object below s3://{s3.Bucket}/{prefix}");
        var failures = Run(s3, ct => FetchAsync(s3, files.Select(o => (Path: o.Key[prefix.Length..], o.Key, (string?)o.ETag)).ToList(), ct));
        if (failures.Count > 0)
            throw new DataException(failures.Take(20).Select(f => new DataError(s3.ToString(), null, f.Value)).ToList());
        return LocalFolder(s3);
    }

    /// <summary>
    /// For an S3 objects folder: checks that its bucket can be read and returns the folder's local copy, into which
    /// <see cref="FetchObjects"/> downloads the object files rows need (nothing is downloaded here).
    /// </summary>
    /// <exception cref="DataException">The bucket does not exist, the credentials are refused, or the endpoint cannot be reached.</exception>
    public string GetObjectsDirectory(Locator folder)
    {
        if (folder is not S3Locator s3) return LocalDataStorage.Instance.GetLocalDirectory(folder);
        var prefix = FolderPrefix(s3);
        var problem = probes.GetOrAdd((s3.Bucket, prefix), key => new Lazy<DataException?>(() => Probe(s3, key.Prefix))).Value;
        if (problem is not null) throw problem;
        var local = LocalFolder(s3);
        Directory.CreateDirectory(local);
        return local;
    }

    /// <summary>
    /// Downloads the object files <paramref name="relativePaths"/> below an S3 folder into its local copy,
    /// <see cref="Settings"/>.MaxConcurrency at a time, skipping those whose cached copy has the object's current ETag,
    /// and reports progress. Returns the paths that could not be downloaded, each with why (naming its <c>s3://</c>
    /// locator); the rows naming them fail when read. Local folders need nothing: the result is empty.
    /// </summary>
    public IReadOnlyDictionary<string, string> FetchObjects(Locator folder, IReadOnlyCollection<string> relativePaths)
    {
        ArgumentNullException.ThrowIfNull(relativePaths);
        if (folder is not S3Locator s3 || relativePaths.Count == 0) return new Dictionary<string, string>();
        var wanted = relativePaths.Distinct(StringComparer.Ordinal)
            .Select(p => (Path: p, Key: ((S3Locator)s3.Combine(p)).Key, Etag: (string?)null)).ToList();
        return Run(s3, ct => FetchAsync(s3, wanted, ct));
    }

    /// <summary>Disposes the S3 client, if this storage created it.</summary>
    public void Dispose()
    {
        if (OwnsClient && client.IsValueCreated) client.Value.Dispose();
    }

    /// <summary>Runs an S3 operation to completion; its S3 errors become a <see cref="DataException"/> naming the locator.</summary>
    private T Run<T>(S3Locator locator, Func<CancellationToken, Task<T>> operation)
    {
        try
        {
            return Task.Run(() => operation(CancellationToken.None)).GetAwaiter().GetResult();
        }
        catch (S3Failure f)
        {
            throw new DataException(locator.ToString(), null, f.Message, f.InnerException);
        }
        catch (Exception e) when (e is ArgumentException)
        {
            throw new DataException(locator.ToString(), null, e.Message, e);
        }
        catch (Exception e) when (S3Errors.IsS3(e))
        {
            throw new DataException(locator.ToString(), null, S3Errors.Describe(e, locator.Bucket, locator.Key, Settings.ResolvedEndpoint), e);
        }
    }

    /// <summary>An S3 request failed; the message names the bucket and key.</summary>
    private sealed class S3Failure(string message, Exception inner) : Exception(message, inner);

    private S3Failure Failure(Exception e, string bucket, string key) =>
        new(S3Errors.Describe(e, bucket, key, Settings.ResolvedEndpoint), e);

    /// <summary>The object's cached copy, downloaded first when missing or stale; returns its local path.</summary>
    private async Task<string> EnsureCurrentAsync(S3Locator s3, CancellationToken ct)
    {
        var cached = Cache.CachedEtag(s3.Bucket, s3.Key);
        if (cached is not null)
        {
            try
            {
                var current = await HeadAsync(s3.Bucket, s3.Key, ct).ConfigureAwait(false);
                if (current == cached)
                {
                    Interlocked.Increment(ref hits);
                    return Cache.PathOf(s3.Bucket, s3.Key);
                }
            }
            catch (S3Failure f) when (S3Errors.Classify(f.InnerException!) is S3Errors.Kind.NotFound or S3Errors.Kind.AccessDenied)
            {
                // An answer to a HEAD has no body, so no error code: it cannot tell a missing bucket from a missing key,
                // nor wrong credentials from a missing permission. The GET below says which.
            }
        }
        var task = $"download {s3}";
        progress?.Report(new ProgressUpdate(task, ProgressActivity.Download, 0, 1, "1 file"));
        var length = await DownloadAsync(s3.Bucket, s3.Key, ct).ConfigureAwait(false);
        progress?.Report(new ProgressUpdate(task, ProgressActivity.Download, 1, 1, $"1 file, {Megabytes(length)}") { Finished = true });
        return Cache.PathOf(s3.Bucket, s3.Key);
    }

    private async Task<long> DownloadAsync(string bucket, string key, CancellationToken ct)
    {
        Interlocked.Increment(ref gets);
        try
        {
            using var response = await Client.GetObjectAsync(bucket, key, ct).ConfigureAwait(false);
            var length = await Cache.StoreAsync(bucket, key, response.ResponseStream, response.ETag ?? "", ct).ConfigureAwait(false);
            Interlocked.Add(ref bytes, length);
            return length;
        }
        catch (Exception e) when (S3Errors.IsS3(e) && e is not S3Failure)
        {
            throw Failure(e, bucket, key);
        }
    }

    private async Task<string> HeadAsync(string bucket, string key, CancellationToken ct)
    {
        Interlocked.Increment(ref heads);
        try
        {
            var response = await Client.GetObjectMetadataAsync(bucket, key, ct).ConfigureAwait(false);
            return response.ETag ?? "";
        }
        catch (Exception e) when (S3Errors.IsS3(e))
        {
            throw Failure(e, bucket, key);
        }
    }

    /// <summary>Every object below <paramref name="prefix"/>, with its ETag.</summary>
    private async Task<List<S3Object>> ListAsync(string bucket, string prefix, CancellationToken ct)
    {
        var objects = new List<S3Object>();
        await foreach (var o in ListRangeAsync(bucket, prefix, null, ct).ConfigureAwait(false)) objects.Add(o);
        return objects;
    }

    private async IAsyncEnumerable<S3Object> ListRangeAsync(string bucket, string prefix, string? startAfter,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix, StartAfter = startAfter };
        while (true)
        {
            Interlocked.Increment(ref lists);
            ListObjectsV2Response page;
            try
            {
                page = await Client.ListObjectsV2Async(request, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (S3Errors.IsS3(e))
            {
                throw Failure(e, bucket, prefix);
            }
            foreach (var o in page.S3Objects ?? []) yield return o;
            if (page.IsTruncated != true || string.IsNullOrEmpty(page.NextContinuationToken)) yield break;
            request.ContinuationToken = page.NextContinuationToken;
        }
    }

    /// <summary>
    /// Whether the objects folder's bucket can be used: a missing bucket, wrong credentials or an unreachable endpoint
    /// are errors; a refused listing alone is not (reading objects may still be allowed).
    /// </summary>
    private DataException? Probe(S3Locator s3, string prefix)
    {
        try
        {
            Task.Run(async () =>
            {
                Interlocked.Increment(ref lists);
                await Client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = s3.Bucket, Prefix = prefix, MaxKeys = 1 }).ConfigureAwait(false);
            }).GetAwaiter().GetResult();
            return null;
        }
        catch (Exception e) when (S3Errors.IsS3(e))
        {
            if (e is AmazonS3Exception { ErrorCode: "AccessDenied" }) return null;
            return new DataException(s3.ToString(), null, S3Errors.Describe(e, s3.Bucket, prefix, Settings.ResolvedEndpoint), e);
        }
    }

    /// <summary>
    /// Brings the objects <paramref name="wanted"/> (path for messages, key, ETag when already known from a listing)
    /// into the cache: finds the current ETag of those cached (one listing of their key range, HEAD for any it does not
    /// cover), then downloads the missing and stale ones in parallel. Returns path → why, for those that failed.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, string>> FetchAsync(S3Locator folder, List<(string Path, string Key, string? Etag)> wanted,
        CancellationToken ct)
    {
        var failures = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var cached = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (path, key, _) in wanted)
        {
            try
            {
                if (Cache.CachedEtag(folder.Bucket, key) is { } etag) cached[key] = etag;
            }
            catch (ArgumentException e)
            {
                failures[path] = e.Message;
            }
        }
        var current = wanted.Where(w => w.Etag is not null).ToDictionary(w => w.Key, w => w.Etag!, StringComparer.Ordinal);
        var unknown = cached.Keys.Where(k => !current.ContainsKey(k)).ToList();
        if (unknown.Count > 0)
            foreach (var (key, etag) in await CurrentEtagsAsync(folder.Bucket, unknown, failures, wanted, ct).ConfigureAwait(false))
                current[key] = etag;

        var toGet = wanted.Where(w => !failures.ContainsKey(w.Path)
                                      && !(cached.TryGetValue(w.Key, out var have) && current.TryGetValue(w.Key, out var now) && have == now))
            .ToList();
        var upToDate = wanted.Count - toGet.Count - failures.Count;
        Interlocked.Add(ref hits, upToDate);
        var task = $"download {folder}";
        if (toGet.Count == 0)
        {
            progress?.Report(new ProgressUpdate(task, ProgressActivity.Download, 0, 0,
                string.Create(CultureInfo.InvariantCulture, $"{upToDate} objects, all cached")) { Finished = true });
            return failures;
        }

        long done = 0, downloaded = 0;
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        var gate = new object();
        void Report(bool final)
        {
            lock (gate)
            {
                if (!final && clock.Elapsed - lastReport < ReportEvery) return;
                lastReport = clock.Elapsed;
                var n = Interlocked.Read(ref done);
                var failed = failures.Count;
                progress?.Report(new ProgressUpdate(task, ProgressActivity.Download, n, toGet.Count,
                    string.Create(CultureInfo.InvariantCulture,
                        $"{n}/{toGet.Count} objects, {Megabytes(Interlocked.Read(ref downloaded))}, {upToDate} cached{(failed > 0 ? $", {failed} failed" : "")}"))
                {
                    Finished = final,
                });
            }
        }
        Report(final: false);
        await Parallel.ForEachAsync(toGet, new ParallelOptions { MaxDegreeOfParallelism = Settings.MaxConcurrency, CancellationToken = ct },
            async (item, token) =>
            {
                try
                {
                    Interlocked.Add(ref downloaded, await DownloadAsync(folder.Bucket, item.Key, token).ConfigureAwait(false));
                }
                catch (S3Failure f)
                {
                    failures[item.Path] = f.Message;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
                {
                    failures[item.Path] = $"s3://{folder.Bucket}/{item.Key} cannot be written to the cache {Cache.Root}: {e.Message}";
                }
                Interlocked.Increment(ref done);
                Report(final: false);
            }).ConfigureAwait(false);
        Report(final: true);
        return failures;
    }

    /// <summary>
    /// The current ETags of <paramref name="keys"/>: listings of the key ranges they span (one range per 1,000 keys, up to
    /// max-concurrency ranges listed at once; each stops past its last key, or after listing 32 times as many keys as
    /// it wants plus a page: a very sparse range is cheaper to ask key by key), then a HEAD for each key the listings
    /// did not give. A key that does not exist is a failure.
    /// </summary>
    private async Task<Dictionary<string, string>> CurrentEtagsAsync(string bucket, List<string> keys, ConcurrentDictionary<string, string> failures,
        List<(string Path, string Key, string? Etag)> wanted, CancellationToken ct)
    {
        keys.Sort(StringComparer.Ordinal);
        var want = keys.ToHashSet(StringComparer.Ordinal);
        var found = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        // Consecutive runs of the sorted keys, listed in parallel: each range takes a page or so.
        var segments = (int)Math.Clamp(Math.Ceiling(keys.Count / (double)PageKeys), 1, Settings.MaxConcurrency);
        var size = (int)Math.Ceiling(keys.Count / (double)segments);
        var ranges = Enumerable.Range(0, segments).Select(i => keys.Skip(i * size).Take(size).ToList()).Where(r => r.Count > 0).ToList();
        await Parallel.ForEachAsync(ranges, new ParallelOptions { MaxDegreeOfParallelism = Settings.MaxConcurrency, CancellationToken = ct },
            async (range, token) =>
            {
                var last = range[^1];
                // Listing is cheap next to a request per key (a page holds 1,000): stop only when the range is very sparse.
                var budget = 32L * range.Count + PageKeys;
                try
                {
                    long listed = 0;
                    await foreach (var o in ListRangeAsync(bucket, CommonPrefix(range), range[0][..^1], token).ConfigureAwait(false))
                    {
                        if (want.Contains(o.Key)) found[o.Key] = o.ETag ?? "";
                        if (string.CompareOrdinal(o.Key, last) >= 0 || ++listed > budget) break;
                    }
                }
                catch (S3Failure f) when (f.InnerException is AmazonS3Exception { ErrorCode: "AccessDenied" })
                {
                    // listing refused: each object is asked about below
                }
            }).ConfigureAwait(false);
        var pathOf = wanted.ToDictionary(w => w.Key, w => w.Path, StringComparer.Ordinal);
        var rest = keys.Where(k => !found.ContainsKey(k)).ToList();
        var heads = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(rest, new ParallelOptions { MaxDegreeOfParallelism = Settings.MaxConcurrency, CancellationToken = ct },
            async (key, token) =>
            {
                try
                {
                    heads[key] = await HeadAsync(bucket, key, token).ConfigureAwait(false);
                }
                catch (S3Failure f) when (S3Errors.Classify(f.InnerException!) != S3Errors.Kind.NotFound)
                {
                    failures[pathOf[key]] = f.Message;
                }
                catch (S3Failure)
                {
                    // missing now: the download below reports it
                }
            }).ConfigureAwait(false);
        foreach (var (key, etag) in heads) found[key] = etag;
        return new Dictionary<string, string>(found, StringComparer.Ordinal);
    }

    /// <summary>Keys in a full page of ListObjectsV2.</summary>
    private const int PageKeys = 1000;

    private static string CommonPrefix(List<string> sorted)
    {
        // The common prefix of a sorted list is that of its first and last entries.
        var (a, b) = (sorted[0], sorted[^1]);
        var n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return a[..n];
    }

    private static string FolderPrefix(S3Locator folder) => folder.Key.Length == 0 || folder.Key.EndsWith('/') ? folder.Key : folder.Key + "/";

    private string LocalFolder(S3Locator folder) => Cache.PathOf(folder.Bucket, FolderPrefix(folder));

    private static string Megabytes(long count) => string.Create(CultureInfo.InvariantCulture, $"{count / 1e6:0.0} MB");
}
