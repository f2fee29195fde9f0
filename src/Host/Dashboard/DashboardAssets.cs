using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;

namespace RapidFire.Host.Dashboard;

/// <summary>
/// The dashboard's static files, embedded in the rapidfire assembly (<c>src/Host/Dashboard/**</c>, resource names
/// <c>dashboard/&lt;path&gt;</c>): nothing is read from the file system or fetched from elsewhere at run time.
/// </summary>
internal static class DashboardAssets
{
    private const string Prefix = "dashboard/";

    /// <summary>An embedded file: its bytes, content type and a strong ETag.</summary>
    public sealed record Asset(string Path, byte[] Content, string ContentType, string ETag);

    private static readonly FrozenDictionary<string, Asset> Assets = Load();

    /// <summary>The page itself.</summary>
    public static Asset Index => Assets["index.html"];

    /// <summary>The relative paths of every embedded file (<c>app.js</c>, <c>vendor/uPlot.iife.min.js</c>...).</summary>
    public static IEnumerable<string> Paths => Assets.Keys;

    /// <summary>The file at <paramref name="path"/> (relative to <c>/dashboard/</c>, case-sensitive), or null.</summary>
    public static Asset? Find(string path) => Assets.GetValueOrDefault(path);

    /// <summary>The content type served for a file name, by extension.</summary>
    public static string ContentTypeOf(string path) => System.IO.Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".ico" => "image/x-icon",
        ".json" => "application/json; charset=utf-8",
        _ => "text/plain; charset=utf-8", // LICENSE files
    };

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            // %(RecursiveDir) in the resource name has the build machine's separator.
            var normalized = name.Replace('\\', '/');
            if (!normalized.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            var path = normalized[Prefix.Length..];
            assets[path] = new Asset(path, bytes, ContentTypeOf(path), $"\"{Convert.ToHexStringLower(SHA256.HashData(bytes).AsSpan(0, 12))}\"");
        }
        if (!assets.ContainsKey("index.html"))
            throw new InvalidOperationException($"the dashboard's index.html is not embedded in {assembly.GetName().Name}: see RapidFire.Host.csproj");
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
