using Akka.Configuration;
using Amazon.Runtime;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Storage;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;
using RapidFire.Tests;

namespace RapidFire.Actors.Tests.Checkpoints;

/// <summary>The S3 checkpoint store on a real local S3 server (s3rver), and the settings that choose it.</summary>
public sealed class S3CheckpointStoreTests(S3Server s3) : IClassFixture<S3Server>
{
    private static CheckpointHeader Header(CheckpointRef key) =>
        new(key.RunId, key.Epoch, key.Chunk, Seed: 42, SchedulerSteps: key.Epoch, new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero), """{"epochsDone":1}""");

    private static byte[] Payload(int seed)
    {
        var bytes = new byte[5000];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private async Task<(S3CheckpointStore Store, string Bucket)> StoreAsync()
    {
        var bucket = await s3.CreateBucketAsync("ckpt");
        return (new S3CheckpointStore(s3.Client, new S3Locator(bucket, "experiments/mnist/")), bucket);
    }

    [Fact]
    public async Task A_saved_checkpoint_is_an_rfck_object_that_loads_back_verified()
    {
        var (store, bucket) = await StoreAsync();
        var key = new CheckpointRef(3, 1, 2);
        var payload = Payload(1);
        await store.SaveAsync(key, Header(key), payload);

        Assert.Equal($"s3://{bucket}/experiments/mnist/run-3/e0001-c0002.ckpt", store.Describe(key));
        Assert.Equal(["experiments/mnist/run-3/e0001-c0002.ckpt"], await s3.KeysAsync(bucket));
        var loaded = store.Load(key);
        Assert.Equal((key, Header(key), store.Describe(key)), (loaded.Ref, loaded.Header, loaded.Source));
        Assert.Equal(payload, loaded.Payload.ToArray());
        // The same bytes a local store writes.
        using var response = await s3.Client.GetObjectAsync(bucket, "experiments/mnist/run-3/e0001-c0002.ckpt");
        using var bytes = new MemoryStream();
        await response.ResponseStream.CopyToAsync(bytes);
        Assert.Equal(CheckpointFile.Encode(Header(key), payload), bytes.ToArray());
    }

    [Fact]
    public async Task List_gives_a_runs_checkpoints_in_order_and_ignores_foreign_objects_and_delete_removes_one()
    {
        var (store, bucket) = await StoreAsync();
        foreach (var key in new[] { new CheckpointRef(1, 1, 0), new CheckpointRef(1, 0, 3), new CheckpointRef(2, 0, 0), new CheckpointRef(1, 0, 10) })
            await store.SaveAsync(key, Header(key), Payload(key.Chunk));
        await s3.PutAsync(bucket, "experiments/mnist/run-1/notes.txt", "foreign");
        await s3.PutAsync(bucket, "experiments/mnist/run-1/e1-c1.ckpt", "not canonical");

        Assert.Equal([new CheckpointRef(1, 0, 3), new CheckpointRef(1, 0, 10), new CheckpointRef(1, 1, 0)], store.List(1));
        store.Delete(new CheckpointRef(1, 0, 3));
        store.Delete(new CheckpointRef(1, 0, 3)); // deleting a missing one does nothing
        Assert.Equal([new CheckpointRef(1, 0, 10), new CheckpointRef(1, 1, 0)], store.List(1));
        Assert.Empty(store.List(7));
    }

    [Fact]
    public async Task A_missing_checkpoint_is_file_not_found_and_a_damaged_one_is_corrupt_naming_its_s3_key()
    {
        var (store, bucket) = await StoreAsync();
        var missing = Assert.Throws<FileNotFoundException>(() => store.Load(new CheckpointRef(1, 0, 0)));
        Assert.Contains($"s3://{bucket}/experiments/mnist/run-1/e0000-c0000.ckpt", missing.Message);

        var key = new CheckpointRef(1, 0, 1);
        var bytes = CheckpointFile.Encode(Header(key), Payload(2));
        bytes[^10] ^= 0xff;
        await s3.PutAsync(bucket, "experiments/mnist/run-1/e0000-c0001.ckpt", bytes);
        var corrupt = Assert.Throws<CheckpointCorruptException>(() => store.Load(key));
        Assert.Contains($"s3://{bucket}/experiments/mnist/run-1/e0000-c0001.ckpt", corrupt.Message);
        Assert.Contains("SHA-256 mismatch", corrupt.Message);
    }

    [Fact]
    public async Task A_missing_bucket_and_wrong_credentials_are_io_errors_naming_bucket_and_key()
    {
        var key = new CheckpointRef(1, 0, 0);
        var noBucket = new S3CheckpointStore(s3.Client, new S3Locator("no-such-bucket-ckpt", "x"));
        var error = await Assert.ThrowsAsync<IOException>(() => noBucket.SaveAsync(key, Header(key), Payload(1)));
        Assert.Equal("checkpoint s3://no-such-bucket-ckpt/x/run-1/e0000-c0000.ckpt cannot be written: bucket 'no-such-bucket-ckpt' does not exist " +
                     "(s3://no-such-bucket-ckpt/x/run-1/e0000-c0000.ckpt)", error.Message);

        var bucket = await s3.CreateBucketAsync("ckpt");
        using var wrong = (new S3Settings { Endpoint = s3.Endpoint, Credentials = new BasicAWSCredentials("WRONG-ID", "wrong-secret") }).CreateClient();
        var denied = new S3CheckpointStore(wrong, new S3Locator(bucket, "x"));
        var refused = await Assert.ThrowsAsync<IOException>(() => denied.SaveAsync(key, Header(key), Payload(1)));
        Assert.Contains($"access denied to s3://{bucket}/x/run-1/e0000-c0000.ckpt (InvalidAccessKeyId", refused.Message);
        Assert.DoesNotContain("wrong-secret", refused.Message);
    }

    [Fact]
    public void Storage_settings_read_rapidfire_s3_and_the_checkpoints_location_from_hocon()
    {
        var defaults = StorageSettings.From(null);
        Assert.Null(defaults.CheckpointsLocation);
        Assert.Equal(S3Settings.DefaultMaxConcurrency, defaults.S3.MaxConcurrency);
        Assert.Null(defaults.S3.Credentials);

        var settings = StorageSettings.From(ConfigurationFactory.ParseString("""
            rapidfire.s3 { endpoint = "http://127.0.0.1:9000", region = "eu-west-1", force-path-style = off, max-concurrency = 4,
                           cache-dir = "/tmp/rf-cache", access-key-id = "id", secret-access-key = "secret" }
            rapidfire.checkpoints.location = "s3://ckpt-bucket/runs"
            """));
        Assert.Equal(new S3Locator("ckpt-bucket", "runs"), settings.CheckpointsLocation);
        Assert.Equal(("http://127.0.0.1:9000", "eu-west-1", (bool?)false, 4, "/tmp/rf-cache"),
            (settings.S3.Endpoint, settings.S3.Region, settings.S3.ForcePathStyle, settings.S3.MaxConcurrency, settings.S3.CacheDirectory));
        Assert.NotNull(settings.S3.Credentials);
        Assert.Equal("http://h:1", StorageSettings.From(StorageSettings.WithEndpoint(ConfigurationFactory.ParseString("""rapidfire.s3.endpoint = "http://other:2" """), "http://h:1")).S3.Endpoint);

        var bad = Assert.Throws<ConfigException>(() => StorageSettings.From(ConfigurationFactory.ParseString("""
            rapidfire.s3 { force-path-style = maybe, max-concurrency = 0, access-key-id = "only-id" }
            rapidfire.checkpoints.location = "/local/folder"
            """)));
        Assert.Equal([
            "rapidfire.s3.force-path-style: must be auto, on or off, got 'maybe'",
            "rapidfire.s3: access-key-id and secret-access-key go together: give both or neither (neither: the environment's AWS credentials)",
            "rapidfire.s3.max-concurrency: must be >= 1, got 0",
            "rapidfire.checkpoints.location: must be empty (the experiment folder) or s3://bucket/prefix, got '/local/folder'",
        ], bad.Problems);
    }
}
