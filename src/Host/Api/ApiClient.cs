using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace RapidFire.Host.Api;

/// <summary>An answer of the API that is not the document asked for: the status code and the <see cref="ErrorView"/> message.</summary>
/// <param name="status">The HTTP status code.</param>
/// <param name="message">What the server said is wrong.</param>
public sealed class ApiException(HttpStatusCode status, string message) : Exception(message)
{
    /// <summary>The HTTP status code.</summary>
    public HttpStatusCode Status { get; } = status;
}

/// <summary>A client of an <see cref="ApiServer"/>, as the <c>rapidfire runs</c> verbs use it.</summary>
public sealed class ApiClient : IDisposable
{
    private readonly HttpClient http;

    /// <summary>
    /// A client of the API at <paramref name="url"/>, giving up on a request after <paramref name="timeout"/> (default
    /// 10 s), sending <paramref name="token"/> (<c>Authorization: Bearer</c>) when the server asks for one
    /// (<see cref="HostFile.Token"/>).
    /// </summary>
    public ApiClient(string url, TimeSpan? timeout = null, string? token = null)
    {
        http = new HttpClient { BaseAddress = new Uri(url.TrimEnd('/') + "/"), Timeout = timeout ?? TimeSpan.FromSeconds(10) };
        if (!string.IsNullOrEmpty(token)) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    /// <summary><c>GET /api/experiment</c>.</summary>
    public Task<ExperimentView> ExperimentAsync(CancellationToken cancellation = default) =>
        GetAsync<ExperimentView>("api/experiment", cancellation);

    /// <summary><c>GET /api/runs</c>: the runs, deleted ones too when <paramref name="all"/>.</summary>
    public Task<List<RunView>> RunsAsync(bool all = false, CancellationToken cancellation = default) =>
        GetAsync<List<RunView>>(all ? "api/runs?all=true" : "api/runs", cancellation);

    /// <summary><c>GET /api/ic-log</c>.</summary>
    public Task<List<ControlLogEntry>> ControlLogAsync(CancellationToken cancellation = default) =>
        GetAsync<List<ControlLogEntry>>("api/ic-log", cancellation);

    /// <summary>
    /// <c>POST /api/runs/{runId}/{operation}</c> (stop, resume, delete or clone; a clone with <paramref name="changes"/> and
    /// <paramref name="warm"/>): the outcome, accepted or rejected. An unknown run or a malformed request is an <see cref="ApiException"/>.
    /// </summary>
    public async Task<OutcomeView> ControlAsync(string operation, int runId, IReadOnlyDictionary<string, string>? changes = null,
        bool warm = false, CancellationToken cancellation = default)
    {
        var path = string.Create(CultureInfo.InvariantCulture, $"api/runs/{runId}/{operation}");
        using var content = operation == "clone" ? JsonContent.Create(new { set = changes ?? new Dictionary<string, string>(), warm }) : null;
        using var response = await http.PostAsync(path, content, cancellation);
        if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Conflict &&
            await response.Content.ReadFromJsonAsync<OutcomeView>(ApiJson.Options, cancellation) is { } outcome)
            return outcome;
        throw await Failure(response, cancellation);
    }

    private async Task<T> GetAsync<T>(string path, CancellationToken cancellation)
    {
        using var response = await http.GetAsync(path, cancellation);
        if (!response.IsSuccessStatusCode) throw await Failure(response, cancellation);
        return await response.Content.ReadFromJsonAsync<T>(ApiJson.Options, cancellation)
               ?? throw new ApiException(response.StatusCode, $"GET {path} answered null");
    }

    private async Task<ApiException> Failure(HttpResponseMessage response, CancellationToken cancellation)
    {
        var text = await response.Content.ReadAsStringAsync(cancellation);
        try
        {
            if (JsonSerializer.Deserialize<ErrorView>(text, ApiJson.Options) is { Error: { } error })
                return new ApiException(response.StatusCode, response.StatusCode == HttpStatusCode.Unauthorized && http.DefaultRequestHeaders.Authorization is null
                    ? $"{error}; this client found no token: the experiment's {ApiToken.FileName} is missing or not readable by this user, and {ApiServerOptions.TokenVariable} is unset"
                    : error);
        }
        catch (JsonException)
        {
            // not one of ours: report the status
        }
        return new ApiException(response.StatusCode, $"{(int)response.StatusCode} {response.ReasonPhrase}");
    }

    /// <inheritdoc />
    public void Dispose() => http.Dispose();
}
