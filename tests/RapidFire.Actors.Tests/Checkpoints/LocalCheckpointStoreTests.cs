using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using RapidFire.Actors.Checkpoints;

namespace RapidFire.Actors.Tests.Checkpoints;

public sealed class LocalCheckpointStoreTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("rf-ckpt-").FullName;
    private readonly LocalCheckpointStore store;

    public LocalCheckpointStoreTests() => store = new LocalCheckpointStore(Path.Combine(folder, "checkpoints"));

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static CheckpointHeader Header(CheckpointRef key, string state = """{"epochsDone":1}""") =>
        new(key.RunId, key.Epoch, key.Chunk, Seed: 42, SchedulerSteps: key.Epoch, new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero), state);

    private static byte[] Payload(int seed, int length = 1000)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private Task Save(CheckpointRef key, byte[] payload) => store.SaveAsync(key, Header(key), payload);

    /// <summary>Checkpoint bytes with any header bytes, but a correct length and digest.</summary>
    private static byte[] RawCheckpoint(byte[] header, byte[] payload, int version = 1)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write("RFCK"u8);
        writer.Write(version);
        writer.Write(header.Length);
        writer.Write(header);
        writer.Write((long)payload.Length);
        writer.Write(SHA256.HashData([.. header, .. payload]));
        writer.Write(payload);
        writer.Flush();
        return stream.ToArray();
    }

    [Fact]
    public async Task A_saved_checkpoint_loads_back_with_the_same_header_and_payload()
    {
        var key = new CheckpointRef(3, 1, 2);
        var payload = Payload(1);
        await Save(key, payload);

        var loaded = store.Load(key);

        Assert.Equal(key, loaded.Ref);
        Assert.Equal(Header(key), loaded.Header);
        Assert.Equal(payload, loaded.Payload.ToArray());
        Assert.Equal(store.Describe(key), loaded.Source);
        Assert.Equal(Path.Combine(folder, "checkpoints", "run-3", "e0001-c0002.ckpt"), store.Describe(key));
        Assert.True(File.Exists(store.Describe(key)));
    }

    [Fact]
    public async Task The_file_starts_with_the_magic_and_version_and_carries_a_camel_case_json_header()
    {
        var key = new CheckpointRef(1, 0, 0);
        await Save(key, Payload(1, 10));
        var bytes = File.ReadAllBytes(store.Describe(key));

        Assert.Equal("RFCK"u8.ToArray(), bytes[..4]);
        Assert.Equal(1, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)));
        var headerLength = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        var json = Encoding.UTF8.GetString(bytes, 12, headerLength);
        Assert.StartsWith("""{"runId":1,"epoch":0,"chunk":0,"seed":42,"schedulerSteps":0,"createdUtc":"2025-01-02T03:04:05.678+00:00","state":""", json);
        Assert.Equal(10, BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(12 + headerLength)));
        Assert.Equal(12 + headerLength + 8 + 32 + 10, bytes.Length);
    }

    [Fact]
    public async Task An_empty_payload_round_trips()
    {
        var key = new CheckpointRef(1, 0, 0);
        await Save(key, []);
        Assert.True(store.Load(key).Payload.IsEmpty);
    }

    [Fact]
    public async Task List_returns_a_runs_checkpoints_by_epoch_then_chunk_ignoring_temporary_and_foreign_files()
    {
        CheckpointRef[] saved = [new(1, 1, 0), new(1, 0, 10), new(1, 0, 2), new(1, 10, 0), new(2, 0, 0)];
        foreach (var key in saved) await Save(key, Payload(key.Chunk, 16));
        var run1 = Path.Combine(store.Directory, "run-1");
        File.WriteAllText(Path.Combine(run1, LocalCheckpointStore.TempName(new CheckpointRef(1, 11, 0))), "half a checkpoint");
        File.WriteAllText(Path.Combine(run1, "e11-c0.ckpt"), "not canonical");
        File.WriteAllText(Path.Combine(run1, "notes.txt"), "foreign");
        File.WriteAllText(Path.Combine(run1, "e0011-c0000.ckpt.bak"), "foreign");
        Directory.CreateDirectory(Path.Combine(run1, "e0012-c0000.ckpt"));

        Assert.Equal([new(1, 0, 2), new(1, 0, 10), new(1, 1, 0), new(1, 10, 0)], store.List(1));
        Assert.Equal([new(2, 0, 0)], store.List(2));
        Assert.Empty(store.List(3));
    }

    [Fact]
    public async Task A_second_save_under_the_same_key_replaces_the_first_whole()
    {
        var key = new CheckpointRef(1, 0, 0);
        await Save(key, Payload(1));
        await Save(key, Payload(2, 500));

        Assert.Equal(Payload(2, 500), store.Load(key).Payload.ToArray());
        Assert.Equal(["e0000-c0000.ckpt"], Directory.GetFileSystemEntries(Path.Combine(store.Directory, "run-1")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_crash_before_the_rename_leaves_the_previous_checkpoint_intact_and_no_partial_final_file()
    {
        var key = new CheckpointRef(1, 0, 0);
        await Save(key, Payload(1));
        string? temp = null;
        store.BeforeRename = path =>
        {
            temp = path;
            Assert.True(File.Exists(path));
            Assert.Equal([key], store.List(1)); // the new bytes are on disk, yet only under a name List ignores
            throw new IOException("simulated crash");
        };

        await Assert.ThrowsAsync<IOException>(() => Save(key, Payload(2)));

        Assert.Equal(Payload(1), store.Load(key).Payload.ToArray());
        Assert.Equal([key], store.List(1));
        Assert.NotNull(temp);
        Assert.StartsWith(".e0000-c0000.ckpt.", Path.GetFileName(temp));
        Assert.EndsWith(".tmp", temp);
        Assert.False(File.Exists(temp)); // a failed save cleans up after itself
    }

    [Fact]
    public async Task A_leftover_temporary_file_of_a_crashed_save_is_neither_listed_nor_loaded()
    {
        var key = new CheckpointRef(1, 0, 1);
        await Save(key, Payload(1));
        var leftover = Path.Combine(store.Directory, "run-1", LocalCheckpointStore.TempName(key));
        File.WriteAllBytes(leftover, CheckpointFile.Encode(Header(key), Payload(2))[..100]);

        Assert.Equal([key], store.List(1));
        Assert.Equal(Payload(1), store.Load(key).Payload.ToArray());
    }

    [Fact]
    public async Task A_cancelled_save_publishes_nothing()
    {
        var key = new CheckpointRef(1, 0, 0);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.SaveAsync(key, Header(key), Payload(1), cancelled.Token));

        Assert.Empty(store.List(1));
    }

    [Fact]
    public async Task A_header_naming_another_checkpoint_is_refused_on_save()
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            store.SaveAsync(new CheckpointRef(1, 0, 1), Header(new CheckpointRef(1, 0, 0)), Payload(1)));
        Assert.Contains("run 1 epoch 0 chunk 1", error.Message);
    }

    [Fact]
    public async Task Saves_of_several_runs_from_several_threads_all_land_whole()
    {
        var keys = (from run in Enumerable.Range(1, 6) from chunk in Enumerable.Range(0, 5) select new CheckpointRef(run, 0, chunk)).ToList();

        await Task.WhenAll(keys.Select(key => Task.Run(() => Save(key, Payload(key.RunId * 100 + key.Chunk, 20_000)))));

        foreach (var run in Enumerable.Range(1, 6))
            Assert.Equal(keys.Where(k => k.RunId == run), store.List(run));
        Assert.All(keys, key => Assert.Equal(Payload(key.RunId * 100 + key.Chunk, 20_000), store.Load(key).Payload.ToArray()));
    }

    [Fact]
    public async Task Delete_removes_a_checkpoint_and_ignores_one_that_does_not_exist()
    {
        var key = new CheckpointRef(1, 0, 0);
        await Save(key, Payload(1));

        store.Delete(key);
        store.Delete(key);
        store.Delete(new CheckpointRef(9, 0, 0));

        Assert.Empty(store.List(1));
    }

    [Fact]
    public void Loading_a_missing_checkpoint_is_a_file_not_found_naming_the_file()
    {
        var key = new CheckpointRef(4, 0, 0);
        var error = Assert.Throws<FileNotFoundException>(() => store.Load(key));
        Assert.Contains(store.Describe(key), error.Message);
        Assert.Equal(store.Describe(key), error.FileName);
    }

    private async Task<(CheckpointRef Key, string Path, byte[] Bytes)> Saved()
    {
        var key = new CheckpointRef(1, 2, 3);
        await Save(key, Payload(1));
        var path = store.Describe(key);
        return (key, path, File.ReadAllBytes(path));
    }

    private CheckpointCorruptException AssertCorrupt(CheckpointRef key, string because)
    {
        var error = Assert.Throws<CheckpointCorruptException>(() => store.Load(key));
        Assert.Contains(store.Describe(key), error.Message);
        Assert.Equal(store.Describe(key), error.Location);
        Assert.Contains(because, error.Message);
        return error;
    }

    [Fact]
    public async Task A_checkpoint_with_a_flipped_payload_byte_is_refused_naming_the_file()
    {
        var (key, path, bytes) = await Saved();
        bytes[^500] ^= 0x01;
        File.WriteAllBytes(path, bytes);

        AssertCorrupt(key, "SHA-256 mismatch");
    }

    [Fact]
    public async Task A_checkpoint_with_a_flipped_header_byte_is_refused_naming_the_file()
    {
        var (key, path, bytes) = await Saved();
        var seedAt = Encoding.UTF8.GetString(bytes).IndexOf("\"seed\":42", StringComparison.Ordinal) + "\"seed\":".Length;
        bytes[seedAt] = (byte)'5'; // still valid JSON: only the digest can tell
        File.WriteAllBytes(path, bytes);

        AssertCorrupt(key, "SHA-256 mismatch");
    }

    [Fact]
    public async Task A_checkpoint_with_a_flipped_digest_byte_is_refused_naming_the_file()
    {
        var (key, path, bytes) = await Saved();
        bytes[^1001] ^= 0x80; // the digest's last byte, right before the 1000-byte payload
        File.WriteAllBytes(path, bytes);

        AssertCorrupt(key, "SHA-256 mismatch");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(10)]
    [InlineData(40)]
    [InlineData(-1000)] // the whole payload missing
    [InlineData(-1)]
    public async Task A_truncated_checkpoint_is_refused_naming_the_file(int keep)
    {
        var (key, path, bytes) = await Saved();
        File.WriteAllBytes(path, bytes[..(keep >= 0 ? keep : bytes.Length + keep)]);

        AssertCorrupt(key, "truncated");
    }

    [Fact]
    public async Task Bytes_after_the_payload_are_refused_naming_the_file()
    {
        var (key, path, bytes) = await Saved();
        File.WriteAllBytes(path, [.. bytes, 0]);

        AssertCorrupt(key, "1 unexpected bytes after the 1000-byte payload");
    }

    [Fact]
    public async Task A_file_with_a_bad_magic_is_refused_naming_the_file()
    {
        var (key, path, bytes) = await Saved();
        bytes[0] = (byte)'P';
        File.WriteAllBytes(path, bytes);

        AssertCorrupt(key, "bad magic");
    }

    [Fact]
    public async Task An_unknown_format_version_is_refused_naming_the_file()
    {
        var (key, path, _) = await Saved();
        File.WriteAllBytes(path, RawCheckpoint("{}"u8.ToArray(), Payload(1), version: 7));

        AssertCorrupt(key, "format version 7 is not supported");
    }

    [Theory]
    [InlineData("{\"runId\":1,")]
    [InlineData("null")]
    [InlineData("{\"runId\":1,\"epoch\":2,\"chunk\":3}")]
    [InlineData("{\"runId\":1,\"epoch\":2,\"chunk\":3,\"seed\":42,\"schedulerSteps\":0,\"createdUtc\":\"2025-01-02T03:04:05Z\",\"state\":null}")]
    public async Task A_checkpoint_with_an_unreadable_header_is_refused_naming_the_file(string header)
    {
        var (key, path, _) = await Saved();
        File.WriteAllBytes(path, RawCheckpoint(Encoding.UTF8.GetBytes(header), Payload(1)));

        AssertCorrupt(key, "unreadable header");
    }

    [Fact]
    public async Task A_checkpoint_filed_under_another_key_is_refused_naming_the_file()
    {
        var (key, path, bytes) = await Saved();
        var other = new CheckpointRef(1, 2, 4);
        File.WriteAllBytes(store.Describe(other), bytes);

        var error = AssertCorrupt(other, "run 1 epoch 2 chunk 3");
        Assert.Contains("run 1 epoch 2 chunk 4", error.Message);
        Assert.Equal(key, store.Load(key).Ref);
    }

    [Fact]
    public async Task Save_and_prune_keeps_what_the_retention_keeps()
    {
        var retention = CheckpointRetention.Default;
        var deleted = new List<CheckpointRef>();
        for (var i = 0; i < 7; i++)
        {
            var key = new CheckpointRef(5, i / 3, i % 3);
            deleted.AddRange(await store.SaveAndPruneAsync(key, Header(key), Payload(i, 16), chunksPerEpoch: 3, retention));
        }

        Assert.Equal([new(5, 0, 2), new(5, 1, 2), new(5, 2, 0)], store.List(5));
        Assert.Equal([new(5, 0, 0), new(5, 0, 1), new(5, 1, 0), new(5, 1, 1)], deleted.Order());


        var final = new CheckpointRef(5, 2, 1);
        Assert.Empty(await store.SaveAndPruneAsync(final, Header(final), Payload(7, 16), chunksPerEpoch: 3, retention));
        Assert.Equal([new(5, 2, 0)], store.Prune(5, chunksPerEpoch: 3, retention, runEnded: true));
        Assert.Equal([new(5, 0, 2), new(5, 1, 2), final], store.List(5));
    }
}
