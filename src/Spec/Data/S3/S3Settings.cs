using System.Globalization;
using Amazon.Runtime;
using Amazon.S3;

namespace RapidFire.Spec.Data.S3;

/// <summary>
/// How RapidFire reaches S3 (or an S3-compatible server) and where it caches what it downloads. The runtime reads them
/// from HOCON <c>rapidfire.s3 { endpoint, region, force-path-style, max-concurrency, cache-dir }</c> and the CLI's
/// <c>--s3-endpoint</c>; in code, set the properties.
/// </summary>
/// <remarks>
/// <para><b>Endpoint.</b> <see cref="Endpoint"/>, else the environment variable <c>AWS_ENDPOINT_URL_S3</c>, else
/// <c>AWS_ENDPOINT_URL</c>, else AWS itself. A custom endpoint is addressed path-style (<c>http://host/bucket/key</c>)
/// unless <see cref="ForcePathStyle"/> says otherwise.</para>
/// <para><b>Region.</b> <see cref="Region"/>, else the SDK's chain (<c>AWS_REGION</c>, <c>AWS_DEFAULT_REGION</c>, the
/// profile); with a custom endpoint and none of these, <c>us-east-1</c> (what S3-compatible servers sign with).</para>
/// <para><b>Credentials.</b> <see cref="Credentials"/>, else the SDK's standard chain: <c>AWS_ACCESS_KEY_ID</c> /
/// <c>AWS_SECRET_ACCESS_KEY</c> (/ <c>AWS_SESSION_TOKEN</c>), the shared profile, web identity, the instance's role.
/// They are never printed: this record's text shows none of them.</para>
/// <para><b>Checksums.</b> Requests carry checksums and responses are validated only where S3 requires it
/// (<c>WHEN_REQUIRED</c>), and uploads are not aws-chunked, so that S3-compatible servers that know neither work.</para>
/// </remarks>
public sealed record S3Settings
{
    /// <summary>The default bound on concurrent object downloads.</summary>
    public const int DefaultMaxConcurrency = 16;

    /// <summary>Settings from the environment alone.</summary>
    public static S3Settings Default { get; } = new();

    /// <summary>The S3 endpoint URL (<c>http://127.0.0.1:4568</c>); null or empty for the environment's, else AWS.</summary>
    public string? Endpoint { get; init; }

    /// <summary>The region (<c>eu-west-1</c>); null or empty for the SDK's chain.</summary>
    public string? Region { get; init; }

    /// <summary>Path-style addressing; null: on for a custom endpoint, off for AWS.</summary>
    public bool? ForcePathStyle { get; init; }

    /// <summary>How many object downloads run at once (at least 1).</summary>
    public int MaxConcurrency { get; init; } = DefaultMaxConcurrency;

    /// <summary>The download cache; null or empty for <c>$XDG_CACHE_HOME/rapidfire/s3</c>, else <c>~/.cache/rapidfire/s3</c>.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>Credentials to use instead of the SDK's chain (never shown in this record's text).</summary>
    public AWSCredentials? Credentials { get; init; }

    /// <summary>The endpoint in use: <see cref="Endpoint"/>, else <c>AWS_ENDPOINT_URL_S3</c>, else <c>AWS_ENDPOINT_URL</c>; null for AWS.</summary>
    public string? ResolvedEndpoint =>
        NonEmpty(Endpoint) ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL_S3"))
                           ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_ENDPOINT_URL"));

    /// <summary>The cache folder in use (see <see cref="CacheDirectory"/>), as a full path.</summary>
    public string ResolvedCacheDirectory
    {
        get
        {
            if (NonEmpty(CacheDirectory) is { } configured) return Path.GetFullPath(configured);
            return Path.GetFullPath(Path.Combine(CacheFolders.Root, "s3"));
        }
    }

    /// <summary>
    /// A folder name for the endpoint in use, so that the caches of different servers never mix: <c>aws</c>, or the
    /// custom endpoint's host and port (<c>127.0.0.1_4568</c>).
    /// </summary>
    public string EndpointId => ResolvedEndpoint is { } url && Uri.TryCreate(url, UriKind.Absolute, out var uri)
        ? string.Create(CultureInfo.InvariantCulture, $"{uri.Host}_{uri.Port}")
        : ResolvedEndpoint is { } other ? new string(other.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray()) : "aws";

    /// <summary>Checks the values; a bad one is a <see cref="ConfigException"/> naming the <c>rapidfire.s3</c> setting.</summary>
    public S3Settings Validated()
    {
        var errors = new List<ConfigError>();
        if (MaxConcurrency < 1) errors.Add(new("rapidfire.s3.max-concurrency", $"must be >= 1, got {MaxConcurrency}"));
        if (ResolvedEndpoint is { } url && !(Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
            errors.Add(new("rapidfire.s3.endpoint", $"must be an http:// or https:// URL, got '{SecretMask.MaskConnectionString(url)}'"));
        return errors.Count == 0 ? this : throw new ConfigException(errors);
    }

    /// <summary>A client for these settings (the caller disposes it).</summary>
    public AmazonS3Client CreateClient()
    {
        var config = CreateConfig();
        return Credentials is { } credentials ? new AmazonS3Client(credentials, config) : new AmazonS3Client(config);
    }

    /// <summary>The client configuration for these settings (endpoint, region, path style, checksums, connections).</summary>
    public AmazonS3Config CreateConfig()
    {
        Validated();
        var config = new AmazonS3Config
        {
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            // Downloads run MaxConcurrency at a time; a few more connections leave room for checkpoints and listings.
            MaxConnectionsPerServer = MaxConcurrency + 4,
        };
        var endpoint = ResolvedEndpoint;
        if (endpoint is not null)
        {
            config.ServiceURL = endpoint;
            config.ForcePathStyle = ForcePathStyle ?? true;
            config.AuthenticationRegion = NonEmpty(Region) ?? RegionFromEnvironment() ?? "us-east-1";
        }
        else
        {
            if (ForcePathStyle is { } pathStyle) config.ForcePathStyle = pathStyle;
            if (NonEmpty(Region) is { } region) config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
        }
        return config;
    }

    /// <summary>The settings without credentials, for messages.</summary>
    public override string ToString() =>
        $"S3Settings {{ Endpoint = {SecretMask.MaskConnectionString(ResolvedEndpoint ?? "aws")}, Region = {NonEmpty(Region) ?? "(chain)"}, " +
        $"ForcePathStyle = {(ForcePathStyle?.ToString() ?? "auto")}, MaxConcurrency = {MaxConcurrency}, CacheDirectory = {ResolvedCacheDirectory}, " +
        $"Credentials = {(Credentials is null ? "(chain)" : "(given)")} }}";

    private static string? RegionFromEnvironment() =>
        NonEmpty(Environment.GetEnvironmentVariable("AWS_REGION")) ?? NonEmpty(Environment.GetEnvironmentVariable("AWS_DEFAULT_REGION"));

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
