using Akka.Configuration;
using Config = Akka.Configuration.Config;
using Amazon.Runtime;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using RapidFire.Spec.Data.S3;

namespace RapidFire.Actors.Storage;

/// <summary>
/// Where an experiment's data comes from and its checkpoints go, read from HOCON (defaults in <c>reference.conf</c>):
/// <code>
/// rapidfire.s3 { endpoint = "", region = "", force-path-style = auto, max-concurrency = 16, cache-dir = "",
///                access-key-id = "", secret-access-key = "" }
/// rapidfire.checkpoints.location = ""   # "": the experiment folder's checkpoints/; or "s3://bucket/prefix"
/// </code>
/// </summary>
/// <param name="S3">How S3 is reached (endpoint, region, credentials, download concurrency, cache).</param>
/// <param name="CheckpointsLocation">Where checkpoints go: null for the experiment folder, else an S3 prefix
/// (the experiment's name is appended: <c>s3://bucket/prefix/NAME/run-N/...</c>).</param>
public sealed record StorageSettings(S3Settings S3, S3Locator? CheckpointsLocation)
{
    /// <summary>
    /// Where test and predict outputs are also uploaded: null for the experiment folder only, else an S3 prefix
    /// (<c>rapidfire.artifacts.location</c>; the experiment's name is appended: <c>s3://bucket/prefix/NAME/test/run-N.csv</c>).
    /// </summary>
    public S3Locator? ArtifactsLocation { get; init; }

    /// <summary>Reads <c>rapidfire.s3</c> and <c>rapidfire.checkpoints</c>, falling back to <see cref="RuntimeSettings.Reference"/>.</summary>
    /// <exception cref="ConfigException">A setting is invalid; the error names it.</exception>
    public static StorageSettings From(Config? config)
    {
        var root = (config ?? Config.Empty).WithFallback(RuntimeSettings.Reference);
        var s3 = root.GetConfig("rapidfire.s3");
        var errors = new List<ConfigError>();
        bool? pathStyle = s3.GetString("force-path-style", "auto").Trim().ToLowerInvariant() switch
        {
            "auto" or "" => null,
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            var other => Error(errors, "rapidfire.s3.force-path-style", $"must be auto, on or off, got '{other}'"),
        };
        var id = s3.GetString("access-key-id", "");
        var secret = s3.GetString("secret-access-key", "");
        if (string.IsNullOrEmpty(id) != string.IsNullOrEmpty(secret))
            errors.Add(new("rapidfire.s3", "access-key-id and secret-access-key go together: give both or neither (neither: the environment's AWS credentials)"));
        var settings = new S3Settings
        {
            Endpoint = s3.GetString("endpoint", ""),
            Region = s3.GetString("region", ""),
            ForcePathStyle = pathStyle,
            MaxConcurrency = s3.GetInt("max-concurrency", S3Settings.DefaultMaxConcurrency),
            CacheDirectory = s3.GetString("cache-dir", ""),
            Credentials = id.Length > 0 && secret.Length > 0 ? new BasicAWSCredentials(id, secret) : null,
        };
        try
        {
            settings.Validated();
        }
        catch (ConfigException e)
        {
            errors.AddRange(e.Errors);
        }

        var checkpoints = S3Location(root, "rapidfire.checkpoints.location", errors);
        var artifacts = S3Location(root, "rapidfire.artifacts.location", errors);
        return errors.Count == 0 ? new StorageSettings(settings, checkpoints) { ArtifactsLocation = artifacts } : throw new ConfigException(errors);
    }

    /// <summary>An optional <c>s3://bucket/prefix</c> setting: null when empty (the experiment folder).</summary>
    private static S3Locator? S3Location(Config root, string path, List<ConfigError> errors)
    {
        var location = root.GetString(path, "").Trim();
        if (location.Length == 0) return null;
        if (!location.StartsWith(Locator.S3Prefix, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add(new(path, $"must be empty (the experiment folder) or s3://bucket/prefix, got '{location}'"));
            return null;
        }
        try
        {
            return (S3Locator)Locator.Parse(location, "/");
        }
        catch (ArgumentException e)
        {
            errors.Add(new(path, e.Message));
            return null;
        }
    }

    /// <summary>HOCON that sets the S3 endpoint (the CLI's <c>--s3-endpoint</c>), over <paramref name="config"/>.</summary>
    public static Config WithEndpoint(Config? config, string? endpoint) =>
        string.IsNullOrWhiteSpace(endpoint)
            ? config ?? Config.Empty
            : ConfigurationFactory.ParseString($"rapidfire.s3.endpoint = \"{endpoint.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"")
                .WithFallback(config ?? Config.Empty);

    private static bool? Error(List<ConfigError> errors, string path, string message)
    {
        errors.Add(new(path, message));
        return null;
    }
}
