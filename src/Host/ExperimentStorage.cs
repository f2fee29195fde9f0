using System.Text.Json;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Storage;
using RapidFire.Actors.Training;
using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;
using RapidFire.Spec.Progress;

namespace RapidFire.Host;

/// <summary>
/// Where one experiment reads its data and keeps its checkpoints, from its HOCON (<see cref="StorageSettings"/>): data
/// through an <see cref="S3DataStorage"/> (local files, and S3 locators through the download cache), checkpoints in the
/// experiment folder or, with <c>rapidfire.checkpoints.location = "s3://bucket/prefix"</c>, in S3 under
/// <c>prefix/NAME/</c>. An S3 location is recorded in the experiment folder (<c>storage.json</c>), so that a resume
/// without the setting finds the checkpoints where the fit wrote them.
/// </summary>
internal sealed class ExperimentStorage : IDisposable
{
    /// <summary>The file in the experiment folder recording where its checkpoints are.</summary>
    public const string FileName = "storage.json";

    private ExperimentStorage(S3DataStorage data, ICheckpointStore checkpoints, S3Locator? artifacts)
    {
        Data = data;
        Checkpoints = checkpoints;
        Artifacts = artifacts;
    }

    /// <summary>Where test and predict outputs are uploaded (<c>rapidfire.artifacts.location</c> + the experiment's name), if anywhere.</summary>
    public S3Locator? Artifacts { get; }

    /// <summary>
    /// Uploads files of the experiment folder to <see cref="Artifacts"/>, each under its path relative to the folder;
    /// returns their <c>s3://</c> locations (none without an artifacts location).
    /// </summary>
    /// <exception cref="IOException">An upload failed; the message names the file and the bucket and key.</exception>
    public async Task<IReadOnlyList<string>> UploadArtifactsAsync(string experimentPath, IEnumerable<string> files, CancellationToken cancellation)
    {
        if (Artifacts is not { } root) return [];
        var uploaded = new List<string>();
        foreach (var file in files)
        {
            var target = (S3Locator)root.Combine(Path.GetRelativePath(experimentPath, file).Replace(Path.DirectorySeparatorChar, '/'));
            try
            {
                // Not aws-chunked: S3-compatible servers (s3rver among them) would keep the chunk framing as the bytes.
                await Data.Client.PutObjectAsync(new Amazon.S3.Model.PutObjectRequest
                {
                    BucketName = target.Bucket, Key = target.Key, FilePath = file, UseChunkEncoding = false,
                }, cancellation);
            }
            catch (Amazon.S3.AmazonS3Exception e)
            {
                throw new IOException($"{file} could not be uploaded to {target}: {e.ErrorCode} {e.Message}", e);
            }
            uploaded.Add(target.ToString());
        }
        return uploaded;
    }

    /// <summary>The data storage (local files and S3).</summary>
    public S3DataStorage Data { get; }

    /// <summary>The checkpoint store.</summary>
    public ICheckpointStore Checkpoints { get; }

    /// <summary>What a fit gets.</summary>
    public TrainingServices.Storage ForFit() => new(Checkpoints, Data);

    /// <summary>Builds the storage of the experiment in <paramref name="experimentPath"/> from <paramref name="config"/>.</summary>
    /// <exception cref="Spec.ConfigException">A <c>rapidfire.s3</c> or <c>rapidfire.checkpoints</c> setting is invalid.</exception>
    public static ExperimentStorage Open(Akka.Configuration.Config? config, string experimentPath, string name, IProgress<ProgressUpdate>? progress)
    {
        var settings = StorageSettings.From(config);
        var data = new S3DataStorage(settings.S3, progress);
        var record = Path.Combine(experimentPath, FileName);
        var location = settings.CheckpointsLocation;
        if (location is null && File.Exists(record))
            location = Recorded(record);
        else if (location is not null)
            File.WriteAllText(record, JsonSerializer.Serialize(new Dictionary<string, string> { ["checkpoints"] = location.ToString() }) + "\n");
        ICheckpointStore checkpoints = location is null
            ? new LocalCheckpointStore(Path.Combine(experimentPath, "checkpoints"))
            : new S3CheckpointStore(data.Client, (S3Locator)location.Combine(name), settings.S3.ResolvedEndpoint);
        return new ExperimentStorage(data, checkpoints, settings.ArtifactsLocation is { } artifacts ? (S3Locator)artifacts.Combine(name) : null);
    }

    /// <summary>
    /// The checkpoint store at <paramref name="location"/>: the folder or <c>s3://</c> prefix an experiment's node names
    /// to its worker nodes (shared by every node), reached through <paramref name="data"/>'s S3 client.
    /// </summary>
    public static ICheckpointStore CheckpointsAt(string location, S3DataStorage data, StorageSettings settings) =>
        location.StartsWith("s3://", StringComparison.Ordinal)
            ? new S3CheckpointStore(data.Client, (S3Locator)Locator.Parse(location, "/"), settings.S3.ResolvedEndpoint)
            : new LocalCheckpointStore(location);

    /// <summary>Where the checkpoints are, for the log: a folder or an <c>s3://</c> prefix.</summary>
    public string Describe() => Checkpoints switch
    {
        S3CheckpointStore s3 => s3.Root.ToString(),
        LocalCheckpointStore local => local.Directory,
        var other => other.GetType().Name,
    };

    public void Dispose() => Data.Dispose();

    private static S3Locator? Recorded(string file)
    {
        try
        {
            var recorded = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(file));
            return recorded?.GetValueOrDefault("checkpoints") is { } text && Locator.Parse(text, "/") is S3Locator s3 ? s3 : null;
        }
        catch (Exception e) when (e is JsonException or ArgumentException or IOException)
        {
            throw new InvalidOperationException($"{file} cannot be read ({e.Message}); give rapidfire.checkpoints.location in the settings", e);
        }
    }
}

/// <summary>Progress reported on any thread, published on the actor system's event stream (where the experiment's event bridge takes it).</summary>
internal sealed class EventStreamProgress(Akka.Event.EventStream stream) : IProgress<ProgressUpdate>
{
    public void Report(ProgressUpdate value) => stream.Publish(value);
}
