using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace RapidFire.Host.Api;

/// <summary>
/// The access token of an <see cref="ApiServer"/>: generated, checked, compared in constant time, and handed to the
/// CLI through <c>&lt;experiment folder&gt;/host.token</c>, a file only its owner can read (mode 0600), never through
/// <c>host.json</c>.
/// </summary>
public static class ApiToken
{
    /// <summary>The token file's name in the experiment folder.</summary>
    public const string FileName = "host.token";

    /// <summary>The shortest token accepted.</summary>
    public const int MinLength = 16;

    /// <summary>The longest token accepted.</summary>
    public const int MaxLength = 512;

    /// <summary>A new token: 256 random bits from the operating system's CSPRNG, base64url without padding (43 characters).</summary>
    public static string Generate() => Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// What is wrong with <paramref name="token"/> as an access token, or null: it must be <see cref="MinLength"/> to
    /// <see cref="MaxLength"/> characters of <c>A-Z a-z 0-9 - . _ ~ + /</c>, then optional <c>=</c> padding (RFC 6750's
    /// token syntax: it travels in a header, a query and a cookie as it is). The message never quotes the token.
    /// </summary>
    public static string? Problem(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.Length < MinLength) return $"the access token must be at least {MinLength} characters long (it has {token.Length})";
        if (token.Length > MaxLength) return $"the access token must be at most {MaxLength} characters long (it has {token.Length})";
        var body = token.TrimEnd('=');
        if (body.Length == 0 || !body.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~' or '+' or '/'))
            return "the access token may hold only the letters A-Z and a-z, digits and - . _ ~ + /, then = padding";
        return null;
    }

    /// <summary>The SHA-256 of a token: what a server keeps and compares (<see cref="Matches"/>).</summary>
    public static byte[] Hash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    /// <summary>
    /// Whether <paramref name="presented"/> is the token hashed in <paramref name="expectedHash"/>, in time independent
    /// of where they differ and of the presented token's length (both are hashed, then compared in constant time).
    /// </summary>
    public static bool Matches(string? presented, byte[] expectedHash)
    {
        ArgumentNullException.ThrowIfNull(expectedHash);
        return presented is not null && CryptographicOperations.FixedTimeEquals(Hash(presented), expectedHash);
    }

    /// <summary>The path of the token file of the experiment in <paramref name="experimentPath"/>.</summary>
    public static string PathIn(string experimentPath) => Path.Combine(experimentPath, FileName);

    /// <summary>
    /// Writes <paramref name="token"/> to the experiment's <c>host.token</c> atomically, created readable and writable
    /// by its owner only (0600) on Unix: a temporary file created with that mode, then a rename.
    /// </summary>
    public static void Write(string experimentPath, string token)
    {
        var path = PathIn(experimentPath);
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.Delete(temp);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(Encoding.UTF8.GetBytes(token));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The token in the experiment's <c>host.token</c>; null when there is none, it cannot be read (another user's) or is not a token.</summary>
    public static string? TryRead(string experimentPath)
    {
        try
        {
            var token = File.ReadAllText(PathIn(experimentPath)).Trim();
            return Problem(token) is null ? token : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The token a client of the experiment in <paramref name="experimentPath"/> sends: its <c>host.token</c>, else the
    /// <see cref="ApiServerOptions.TokenVariable"/> environment variable, else none.
    /// </summary>
    public static string? ForClient(string experimentPath, Func<string, string?>? environment = null) =>
        TryRead(experimentPath) ?? ((environment ?? Environment.GetEnvironmentVariable)(ApiServerOptions.TokenVariable) is { Length: > 0 } variable
            ? variable.Trim()
            : null);

    /// <summary>Deletes the experiment's <c>host.token</c> if it still holds <paramref name="token"/> (a newer server's stays).</summary>
    public static void DeleteIfOurs(string experimentPath, string token)
    {
        if (TryRead(experimentPath) != token) return;
        try
        {
            File.Delete(PathIn(experimentPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind, it names a server that is gone: its token opens nothing.
        }
    }
}
