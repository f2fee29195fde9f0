namespace RapidFire.Spec.Data.S3;

/// <summary>
/// The local copies of S3 objects: a mirror of each bucket, <c>{root}/{bucket}/{key}</c>, so that an object folder's
/// copy is a plain folder in which object paths resolve, and beside it the ETag each copy was downloaded with,
/// <c>{root}/.etags/{bucket}/{key}.etag</c>. A copy is current when its ETag is the object's: an unchanged object is
/// never downloaded again, a changed one is (across runs, experiments and processes sharing the folder).
/// </summary>
/// <remarks>
/// Writes are atomic: the object goes to a temporary file in its folder that is renamed over the copy, and only then
/// is its ETag written (the same way). A crash in between leaves a copy with the previous ETag, which the next read
/// sees as stale and downloads again; a reader never sees half a file.
/// </remarks>
internal sealed class S3ObjectCache(string root)
{
    private const string EtagFolder = ".etags";

    /// <summary>The cache folder of one endpoint.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The local copy of <c>s3://bucket/key</c> (or, for a prefix, its folder).</summary>
    /// <exception cref="ArgumentException">The key has a segment that cannot be a file name (empty, <c>.</c>, <c>..</c>).</exception>
    public string PathOf(string bucket, string key) => Join(Root, bucket, key);

    /// <summary>The ETag the local copy was downloaded with, or null when there is no complete copy.</summary>
    public string? CachedEtag(string bucket, string key)
    {
        var etag = EtagPath(bucket, key);
        try
        {
            return File.Exists(PathOf(bucket, key)) && File.Exists(etag) ? File.ReadAllText(etag).Trim() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes <paramref name="content"/> as the copy of <c>s3://bucket/key</c> downloaded with <paramref name="etag"/>;
    /// returns the bytes written.
    /// </summary>
    public async Task<long> StoreAsync(string bucket, string key, Stream content, string etag, CancellationToken cancellationToken)
    {
        var path = PathOf(bucket, key);
        long length;
        var temp = Temporary(path);
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                length = file.Length;
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        var etagPath = EtagPath(bucket, key);
        var etagTemp = Temporary(etagPath);
        try
        {
            await File.WriteAllTextAsync(etagTemp, etag, cancellationToken).ConfigureAwait(false);
            File.Move(etagTemp, etagPath, overwrite: true);
        }
        catch
        {
            TryDelete(etagTemp);
            throw;
        }
        return length;
    }

    private string EtagPath(string bucket, string key) => Join(Path.Combine(Root, EtagFolder), bucket, key) + ".etag";

    private static string Temporary(string path)
    {
        var folder = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
    }

    private static string Join(string root, string bucket, string key)
    {
        var path = Path.Combine(root, bucket);
        foreach (var segment in key.TrimEnd('/').Split('/', StringSplitOptions.None))
        {
            if (key.TrimEnd('/').Length == 0) break;
            if (segment is "" or "." or ".." || segment.Contains('\0'))
                throw new ArgumentException($"s3://{bucket}/{key} cannot be copied to a local file: its key has the segment '{segment}'", nameof(key));
            path = Path.Combine(path, segment);
        }
        return path;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a stray temporary file is harmless: no copy is ever read under its name
        }
    }
}
