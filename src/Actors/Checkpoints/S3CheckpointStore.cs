using Amazon.S3;
using Amazon.S3.Model;
using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;

namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// Checkpoints as S3 objects, one per checkpoint at <c>{prefix}/run-{id}/e{epoch}-c{chunk}.ckpt</c>, holding the same
/// bytes as a local checkpoint file (<see cref="CheckpointFile"/>: RFCK, header, SHA-256, payload).
/// </summary>
/// <remarks>
/// A save is one PutObject of the whole checkpoint: S3 makes an object visible only once it is completely written,
/// so the checkpoint is durable when the call returns, and a crash before then leaves the previous object under the
/// key (there is no temporary object to clean up). Loads verify the SHA-256 like local ones; a missing object is a
/// <see cref="FileNotFoundException"/>, any other S3 failure an <see cref="IOException"/> naming <c>s3://bucket/key</c>
/// (access denied, missing bucket, unreachable endpoint). Uploads are not aws-chunked, so S3-compatible servers that
/// do not know that encoding store the bytes as sent.
/// </remarks>
public sealed class S3CheckpointStore : ICheckpointStore
{
    private readonly IAmazonS3 client;
    private readonly string? endpoint;

    /// <summary>A store under <paramref name="root"/> (a bucket and key prefix) through <paramref name="client"/>.</summary>
    /// <param name="client">The S3 client (the caller owns it).</param>
    /// <param name="root">Where the checkpoints go: <c>s3://bucket/prefix</c>.</param>
    /// <param name="endpoint">The endpoint, for messages.</param>
    public S3CheckpointStore(IAmazonS3 client, S3Locator root, string? endpoint = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(root);
        this.client = client;
        this.endpoint = endpoint;
        Root = root with { Key = root.Key.Trim('/') };
    }

    /// <summary>The bucket and prefix of the store.</summary>
    public S3Locator Root { get; }

    /// <summary>The object key of a checkpoint.</summary>
    public string KeyOf(CheckpointRef key) => Prefix + key.RelativePath;

    /// <inheritdoc />
    public string Describe(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return $"{Locator.S3Prefix}{Root.Bucket}/{KeyOf(key)}";
    }

    private string Prefix => Root.Key.Length == 0 ? "" : Root.Key + "/";

    /// <inheritdoc />
    public async Task SaveAsync(CheckpointRef key, CheckpointHeader header, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(header);
        header.RequireFor(key);
        cancellationToken.ThrowIfCancellationRequested();
        var bytes = CheckpointFile.Encode(header, payload);
        try
        {
            await client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = Root.Bucket,
                Key = KeyOf(key),
                InputStream = new MemoryStream(bytes, writable: false),
                ContentType = "application/octet-stream",
                UseChunkEncoding = false,
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (S3Errors.IsS3(e) && e is not OperationCanceledException)
        {
            throw Failure(e, KeyOf(key), "cannot be written");
        }
    }

    /// <inheritdoc />
    public Checkpoint Load(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var where = Describe(key);
        byte[] bytes;
        try
        {
            bytes = Task.Run(async () =>
            {
                using var response = await client.GetObjectAsync(Root.Bucket, KeyOf(key)).ConfigureAwait(false);
                using var buffer = new MemoryStream(response.ContentLength > 0 ? (int)Math.Min(response.ContentLength, int.MaxValue) : 0);
                await response.ResponseStream.CopyToAsync(buffer).ConfigureAwait(false);
                return buffer.ToArray();
            }).GetAwaiter().GetResult();
        }
        catch (Exception e) when (S3Errors.IsS3(e))
        {
            if (S3Errors.Classify(e) == S3Errors.Kind.NotFound)
                throw new FileNotFoundException($"checkpoint '{where}' ({key}) does not exist", where, e);
            throw Failure(e, KeyOf(key), "cannot be read");
        }
        return CheckpointFile.DecodeAs(key, bytes, where);
    }

    /// <inheritdoc />
    public IReadOnlyList<CheckpointRef> List(int runId)
    {
        var folder = Prefix + CheckpointRef.RunFolder(runId) + "/";
        try
        {
            var keys = Task.Run(async () =>
            {
                var found = new List<CheckpointRef>();
                var request = new ListObjectsV2Request { BucketName = Root.Bucket, Prefix = folder };
                while (true)
                {
                    var page = await client.ListObjectsV2Async(request).ConfigureAwait(false);
                    foreach (var o in page.S3Objects ?? [])
                        if (CheckpointRef.TryParse(o.Key[Prefix.Length..], out var parsed))
                            found.Add(parsed);
                    if (page.IsTruncated != true || string.IsNullOrEmpty(page.NextContinuationToken)) return found;
                    request.ContinuationToken = page.NextContinuationToken;
                }
            }).GetAwaiter().GetResult();
            keys.Sort();
            return keys;
        }
        catch (Exception e) when (S3Errors.IsS3(e))
        {
            throw Failure(e, folder, "cannot be listed");
        }
    }

    /// <inheritdoc />
    public void Delete(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            // S3 answers a delete of a missing object with success too.
            Task.Run(() => client.DeleteObjectAsync(Root.Bucket, KeyOf(key))).GetAwaiter().GetResult();
        }
        catch (Exception e) when (S3Errors.IsS3(e))
        {
            if (S3Errors.Classify(e) == S3Errors.Kind.NotFound) return;
            throw Failure(e, KeyOf(key), "cannot be deleted");
        }
    }

    private IOException Failure(Exception e, string key, string what) =>
        new($"checkpoint {Locator.S3Prefix}{Root.Bucket}/{key} {what}: {S3Errors.Describe(e, Root.Bucket, key, endpoint)}", e);
}
