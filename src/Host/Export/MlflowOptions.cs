namespace RapidFire.Host.Export;

/// <summary>
/// Where and how <see cref="MlflowExporter"/> reaches an MLflow tracking server. <see cref="Resolve"/> reads them the
/// way MLflow's own clients do: the tracking URI from <c>--mlflow URI</c>, else from <c>MLFLOW_TRACKING_URI</c>;
/// credentials from <c>MLFLOW_TRACKING_USERNAME</c> and <c>MLFLOW_TRACKING_PASSWORD</c> (HTTP Basic), else
/// <c>MLFLOW_TRACKING_TOKEN</c> (Bearer). Credentials are sent in the <c>Authorization</c> header only, never logged.
/// </summary>
/// <param name="TrackingUri">The tracking server's base URI (<c>http</c> or <c>https</c>): requests go to <c>{uri}/api/2.0/mlflow/...</c>.</param>
public sealed record MlflowOptions(Uri TrackingUri)
{
    /// <summary>The environment variable of the tracking URI, used when no URI is given.</summary>
    public const string UriVariable = "MLFLOW_TRACKING_URI";

    /// <summary>The environment variable of a Bearer token.</summary>
    public const string TokenVariable = "MLFLOW_TRACKING_TOKEN";

    /// <summary>The environment variable of the HTTP Basic user name (with <see cref="PasswordVariable"/>).</summary>
    public const string UsernameVariable = "MLFLOW_TRACKING_USERNAME";

    /// <summary>The environment variable of the HTTP Basic password (with <see cref="UsernameVariable"/>).</summary>
    public const string PasswordVariable = "MLFLOW_TRACKING_PASSWORD";

    /// <summary>A Bearer token (used when no user name and password are set).</summary>
    public string? Token { get; init; }

    /// <summary>The HTTP Basic user name.</summary>
    public string? Username { get; init; }

    /// <summary>The HTTP Basic password.</summary>
    public string? Password { get; init; }

    /// <summary>The MLflow experiment the runs go to; null: the RapidFire experiment's name.</summary>
    public string? ExperimentName { get; init; }

    /// <summary>How many times a failed request (no answer, a timeout, HTTP 429 or 5xx) is tried again.</summary>
    public int Retries { get; init; } = 3;

    /// <summary>The wait before the first retry; it doubles with each retry.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long one request may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often buffered metrics are sent (sooner when a full batch of 1,000 is waiting, or on a flush).</summary>
    public TimeSpan SendInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>After this many requests in a row failed (each after its retries), the exporter stops for the rest of the session.</summary>
    public int GiveUpAfter { get; init; } = 5;

    /// <summary>How long disposing the exporter waits for what is still buffered to be sent.</summary>
    public TimeSpan FlushTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The tracking URI as it may be shown: without any user information.</summary>
    public string DisplayUri => TrackingUri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped).TrimEnd('/');

    /// <summary>
    /// The options in effect: <paramref name="uri"/> (the <c>--mlflow</c> option) when given, else the
    /// <c>MLFLOW_TRACKING_URI</c> environment variable; null when neither is set (no export). Credentials come from the
    /// environment: <c>MLFLOW_TRACKING_USERNAME</c> and <c>MLFLOW_TRACKING_PASSWORD</c> (Basic) when both are set, else
    /// <c>MLFLOW_TRACKING_TOKEN</c> (Bearer), as MLflow's clients choose.
    /// </summary>
    /// <param name="uri">The URI given explicitly (wins over the environment).</param>
    /// <param name="environment">Reads an environment variable (default: the process's).</param>
    /// <exception cref="ArgumentException">
    /// The URI in effect is not an absolute <c>http</c>/<c>https</c> URI (MLflow's <c>file:</c>, <c>sqlite:</c> or
    /// <c>databricks</c> stores are not tracking servers this exporter can reach); the message names where it came from.
    /// </exception>
    public static MlflowOptions? Resolve(string? uri = null, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var source = "--mlflow";
        if (string.IsNullOrWhiteSpace(uri))
        {
            uri = environment(UriVariable);
            source = UriVariable;
        }
        if (string.IsNullOrWhiteSpace(uri)) return null;
        if (!Uri.TryCreate(uri.Trim(), UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https"))
            throw new ArgumentException($"{source}: '{RapidFire.Spec.SecretMask.MaskConnectionString(uri)}' is not an http(s) URI of an MLflow tracking server " +
                "(the exporter speaks MLflow's REST API; file:, sqlite: and databricks stores are not supported)", nameof(uri));
        var username = environment(UsernameVariable);
        var password = environment(PasswordVariable);
        var basic = !string.IsNullOrEmpty(username) && !string.IsNullOrEmpty(password);
        var token = environment(TokenVariable);
        return new MlflowOptions(parsed)
        {
            Username = basic ? username : null,
            Password = basic ? password : null,
            Token = basic || string.IsNullOrEmpty(token) ? null : token,
        };
    }

    /// <summary>The <c>Authorization</c> header's value, if credentials are set.</summary>
    internal System.Net.Http.Headers.AuthenticationHeaderValue? Authorization =>
        Username is { Length: > 0 } user && Password is { Length: > 0 } password
            ? new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{user}:{password}")))
            : Token is { Length: > 0 } token ? new("Bearer", token) : null;

    /// <summary>Never prints the credentials (a record's generated ToString would).</summary>
    public override string ToString() =>
        $"MlflowOptions {{ TrackingUri = {DisplayUri}, Credentials = {(Authorization is { } a ? a.Scheme : "none")} }}";
}
