using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RapidFire.Host.Api;

/// <summary>
/// <c>&lt;experiment folder&gt;/host.json</c>: where the process that runs an experiment serves its HTTP API. The
/// <see cref="ApiServer"/> writes it when it starts and deletes it when it stops; the CLI reads it to find the host of
/// an experiment through the experiment's folder. A file left by a killed process is stale: <see cref="FindLiveAsync"/>
/// ignores it (the process is gone, or the URL does not answer for this experiment). It never holds the access token:
/// that is in <c>host.token</c> beside it, readable by its owner only (<see cref="ApiToken"/>).
/// </summary>
/// <param name="Url">The API's base URL, <c>http://127.0.0.1:PORT</c>.</param>
/// <param name="Pid">The host process's id.</param>
/// <param name="Experiment">The experiment's name.</param>
/// <param name="StartedUtc">When the server started.</param>
public sealed record HostFile(string Url, int Pid, string Experiment, DateTime StartedUtc)
{
    /// <summary>The file's name in the experiment folder.</summary>
    public const string FileName = "host.json";

    /// <summary>
    /// The access token a client sends to this host (<see cref="ApiToken.ForClient"/>: the experiment's <c>host.token</c>,
    /// else the <see cref="ApiServerOptions.TokenVariable"/> environment variable), as <see cref="FindLiveAsync"/> found
    /// it; null for none. Never written to <c>host.json</c>.
    /// </summary>
    [JsonIgnore]
    public string? Token { get; init; }

    /// <summary>The path of the host file of the experiment in <paramref name="experimentPath"/>.</summary>
    public static string PathIn(string experimentPath) => Path.Combine(experimentPath, FileName);

    /// <summary>Writes <paramref name="host"/> into <paramref name="experimentPath"/> atomically (a temp file, then a rename).</summary>
    public static void Write(string experimentPath, HostFile host)
    {
        var path = PathIn(experimentPath);
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(host, ApiJson.Options));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The host file of the experiment in <paramref name="experimentPath"/>; null when there is none or it cannot be read.</summary>
    public static HostFile? TryRead(string experimentPath)
    {
        try
        {
            var host = JsonSerializer.Deserialize<HostFile>(File.ReadAllText(PathIn(experimentPath)), ApiJson.Options);
            return host is { Url.Length: > 0, Pid: > 0 } && Uri.TryCreate(host.Url, UriKind.Absolute, out _) ? host : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return null; // missing, being replaced, or not ours: no host
        }
    }

    /// <summary>Deletes the host file in <paramref name="experimentPath"/> if it still names <paramref name="url"/> (a newer host's file stays).</summary>
    public static void DeleteIfOurs(string experimentPath, string url)
    {
        if (TryRead(experimentPath)?.Url != url) return;
        try
        {
            File.Delete(PathIn(experimentPath));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left behind, it is stale: readers check that its host is alive.
        }
    }

    /// <summary>
    /// Whether the host is alive: its process exists and its URL answers <c>GET /api/experiment</c> for this experiment
    /// (sent with <see cref="Token"/>), or asks for an access token that <see cref="Token"/> is not (401): a live host
    /// this client may not use, which the next request reports. A host that is slow to answer (a loaded machine: the
    /// answer took longer than <paramref name="timeout"/>) counts as alive: its process exists and its port accepted
    /// the request. Only a process that is gone, a port nobody listens on, or another experiment's answer make it stale.
    /// </summary>
    public async Task<bool> IsAliveAsync(TimeSpan timeout, CancellationToken cancellation = default)
    {
        if (!ProcessExists(Pid)) return false;
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        if (Token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        using var slow = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        slow.CancelAfter(timeout);
        try
        {
            using var response = await http.GetAsync(new Uri(new Uri(Url), "api/experiment"), HttpCompletionOption.ResponseHeadersRead, slow.Token);
            if (response.StatusCode == HttpStatusCode.Unauthorized) return true;
            if (!response.IsSuccessStatusCode) return false;
            var experiment = await response.Content.ReadFromJsonAsync<ExperimentView>(ApiJson.Options, slow.Token);
            return experiment?.Name == Experiment;
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            return true; // slow, not dead: the request that follows has a longer timeout and reports what it finds
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>The live host of the experiment in <paramref name="experimentPath"/>, or null (no host file, or a stale one).</summary>
    /// <remarks>The host found carries the access token this client sends it (<see cref="Token"/>).</remarks>
    public static async Task<HostFile?> FindLiveAsync(string experimentPath, TimeSpan timeout, CancellationToken cancellation = default) =>
        TryRead(experimentPath) is { } file && file with { Token = ApiToken.ForClient(experimentPath) } is var host &&
        await host.IsAliveAsync(timeout, cancellation) ? host : null;

    private static bool ProcessExists(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid); // throws when no such process runs
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
