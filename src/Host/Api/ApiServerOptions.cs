using RapidFire.Actors;
using RapidFire.Spec;

namespace RapidFire.Host.Api;

/// <summary>
/// Where an <see cref="ApiServer"/> listens and the access token it asks for. Serving on loopback needs no token unless
/// one is configured; any other address (<c>0.0.0.0</c>, <c>::</c>, a LAN address) always does: a configured
/// <see cref="Token"/>, or, with <see cref="GenerateToken"/>, one the server generates (<see cref="ApiServer.Token"/>,
/// for the caller to print). Without either such a bind is refused.
/// </summary>
/// <remarks>
/// With a token, every request must carry it (header <c>Authorization: Bearer TOKEN</c>, query <c>?token=TOKEN</c>, or
/// the cookie a query token sets); the token is also written to <c>&lt;experiment folder&gt;/host.token</c> (owner-only)
/// for the <c>rapidfire runs</c> verbs. See <see cref="ApiServer"/>.
/// </remarks>
public sealed record ApiServerOptions
{
    /// <summary>The environment variable that configures the access token (<see cref="From"/>; the CLI's client reads it too).</summary>
    public const string TokenVariable = "RAPIDFIRE_API_TOKEN";

    /// <summary>The HOCON section of these options: <c>rapidfire.api { address, port, token, allowed-hosts }</c>.</summary>
    public const string Section = "rapidfire.api";

    /// <summary>The IP address to listen on (<c>127.0.0.1</c>, <c>::1</c>, <c>localhost</c>, <c>0.0.0.0</c>, <c>::</c>, a LAN address); default loopback.</summary>
    public string Address { get; init; } = "127.0.0.1";

    /// <summary>The TCP port; 0 (the default) picks a free one.</summary>
    public int Port { get; init; }

    /// <summary>
    /// The access token every request must carry; null: none on loopback, a generated one elsewhere. A configured token
    /// is at least <see cref="ApiToken.MinLength"/> characters of <c>A-Z a-z 0-9 - . _ ~ + /</c> (then <c>=</c> padding),
    /// and is required on loopback too.
    /// </summary>
    public string? Token { get; init; }

    /// <summary>
    /// Whether a server bound to a non-loopback address with no <see cref="Token"/> generates one (the caller prints it,
    /// as <c>rapidfire fit</c> does); false: such a bind is refused.
    /// </summary>
    public bool GenerateToken { get; init; }

    /// <summary>
    /// Host names the server answers besides loopback, the address a request reached and the machine's host name: for a
    /// server bound to a non-loopback address and reached through another DNS name (<c>gpu-box.lab.example</c>). A
    /// request naming any other host in its <c>Host</c> header is refused (DNS rebinding).
    /// </summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>
    /// The options configured by <paramref name="settings"/>' <c>rapidfire.api</c> section (over the defaults of
    /// <c>reference.conf</c>), with the token of the <see cref="TokenVariable"/> environment variable when it is set
    /// (it wins over the HOCON <c>token</c>).
    /// </summary>
    /// <param name="settings">A HOCON config (the CLI's <c>--settings</c> file); null: the defaults.</param>
    /// <param name="environment">Reads an environment variable (default: the process's environment).</param>
    /// <exception cref="ConfigException">A malformed token (naming the variable or the HOCON path, never quoting the
    /// token), an address that is not an IP address or localhost, or a port out of range.</exception>
    public static ApiServerOptions From(Akka.Configuration.Config? settings = null, Func<string, string?>? environment = null)
    {
        var section = (settings ?? Akka.Configuration.Config.Empty).WithFallback(RuntimeSettings.Reference).GetConfig(Section);
        var (token, source) = (environment ?? Environment.GetEnvironmentVariable)(TokenVariable) is { Length: > 0 } variable
            ? (variable.Trim(), TokenVariable)
            : (section.GetString("token", "") is { Length: > 0 } configured ? configured : null, $"{Section}.token");
        var errors = new List<ConfigError>();
        if (token is not null && ApiToken.Problem(token) is { } problem) errors.Add(new ConfigError(source, problem));
        var address = section.GetString("address", "127.0.0.1");
        if (!string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase) && !System.Net.IPAddress.TryParse(address.Trim('[', ']'), out _))
            errors.Add(new ConfigError($"{Section}.address", $"must be an IP address (127.0.0.1, 0.0.0.0, ::, ...) or localhost, not '{address}'"));
        var port = section.GetInt("port", 0);
        if (port is < 0 or > System.Net.IPEndPoint.MaxPort) errors.Add(new ConfigError($"{Section}.port", $"must be 0 to 65535, not {port}"));
        if (errors.Count > 0) throw new ConfigException(errors);
        return new ApiServerOptions
        {
            Address = address,
            Port = port,
            Token = token,
            AllowedHosts = section.GetStringList("allowed-hosts")?.ToList() ?? [],
        };
    }

    /// <summary>The token as the options show it: never the token itself.</summary>
    public override string ToString() =>
        $"ApiServerOptions {{ Address = {Address}, Port = {Port}, Token = {(Token is null ? "none" : SecretMaskText)}, AllowedHosts = [{string.Join(", ", AllowedHosts)}] }}";

    private const string SecretMaskText = Spec.SecretMask.Masked;
}
