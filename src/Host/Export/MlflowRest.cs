using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RapidFire.Host.Export;

/// <summary>A request to MLflow that failed (after its retries, when it could be retried).</summary>
/// <param name="message">What failed: the endpoint and MLflow's error code and message, or the transport error.</param>
/// <param name="status">The HTTP status, if the server answered.</param>
/// <param name="errorCode">MLflow's <c>error_code</c>, if the answer had one.</param>
public sealed class MlflowException(string message, HttpStatusCode? status = null, string? errorCode = null) : Exception(message)
{
    /// <summary>The HTTP status, if the server answered.</summary>
    public HttpStatusCode? Status { get; } = status;

    /// <summary>MLflow's <c>error_code</c> (<c>INVALID_PARAMETER_VALUE</c>, <c>RESOURCE_DOES_NOT_EXIST</c>...), if any.</summary>
    public string? ErrorCode { get; } = errorCode;
}

/// <summary>
/// The five calls of MLflow's REST API 2.0 the exporter makes, over one <see cref="HttpClient"/>, with retries: a
/// request that gets no answer, times out, or is answered 429 or 5xx is tried again after
/// <see cref="MlflowOptions.RetryDelay"/>, doubling, up to <see cref="MlflowOptions.Retries"/> times; any other
/// answer but 200 fails at once (MLflow's <c>{error_code, message}</c> in the exception).
/// </summary>
internal sealed class MlflowRest : IDisposable
{
    private readonly HttpClient http;
    private readonly MlflowOptions options;
    private readonly string api;

    public MlflowRest(MlflowOptions options)
    {
        this.options = options;
        api = options.TrackingUri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped).TrimEnd('/') + "/api/2.0/mlflow/";
        http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.Authorization = options.Authorization;
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("rapidfire-net", "1.0"));
    }

    /// <summary><c>GET experiments/get-by-name</c>: the experiment's id, or null when there is none of that name.</summary>
    public async Task<string?> ExperimentIdByNameAsync(string name, CancellationToken cancellation)
    {
        try
        {
            var answer = await SendAsync(HttpMethod.Get, $"experiments/get-by-name?experiment_name={Uri.EscapeDataString(name)}", null, cancellation);
            return Text(answer, "experiment", "experiment_id") ?? throw new MlflowException("experiments/get-by-name: the answer has no experiment.experiment_id");
        }
        catch (MlflowException e) when (e.ErrorCode == "RESOURCE_DOES_NOT_EXIST" || (e.Status == HttpStatusCode.NotFound && e.ErrorCode is null))
        {
            return null;
        }
    }

    /// <summary><c>POST experiments/create</c>: the new experiment's id.</summary>
    public async Task<string> CreateExperimentAsync(string name, CancellationToken cancellation)
    {
        var answer = await SendAsync(HttpMethod.Post, "experiments/create", new JsonObject { ["name"] = name }, cancellation);
        return Text(answer, "experiment_id") ?? throw new MlflowException("experiments/create: the answer has no experiment_id");
    }

    /// <summary><c>POST runs/create</c>: the new run's id.</summary>
    public async Task<string> CreateRunAsync(string experimentId, string runName, long startTime, IReadOnlyList<KeyValuePair<string, string>> tags,
        CancellationToken cancellation)
    {
        var answer = await SendAsync(HttpMethod.Post, "runs/create", new JsonObject
        {
            ["experiment_id"] = experimentId,
            ["run_name"] = runName,
            ["start_time"] = startTime,
            ["tags"] = Pairs(tags),
        }, cancellation);
        return Text(answer, "run", "info", "run_id") ?? throw new MlflowException("runs/create: the answer has no run.info.run_id");
    }

    /// <summary><c>POST runs/log-batch</c>; the caller keeps within MLflow's limits (see <see cref="MlflowLimits"/>).</summary>
    public Task LogBatchAsync(string runId, IReadOnlyList<MlflowMetric> metrics, IReadOnlyList<KeyValuePair<string, string>> parameters,
        IReadOnlyList<KeyValuePair<string, string>> tags, CancellationToken cancellation)
    {
        var body = new JsonObject { ["run_id"] = runId };
        if (metrics.Count > 0)
            body["metrics"] = new JsonArray(metrics.Select(m => (JsonNode)new JsonObject
            {
                ["key"] = m.Key,
                ["value"] = Number(m.Value),
                ["timestamp"] = m.Timestamp,
                ["step"] = m.Step,
            }).ToArray());
        if (parameters.Count > 0) body["params"] = Pairs(parameters);
        if (tags.Count > 0) body["tags"] = Pairs(tags);
        return SendAsync(HttpMethod.Post, "runs/log-batch", body, cancellation);
    }

    /// <summary><c>POST runs/update</c>: the run's status, and its end time when it ended.</summary>
    public Task UpdateRunAsync(string runId, string status, long? endTime, CancellationToken cancellation)
    {
        var body = new JsonObject { ["run_id"] = runId, ["status"] = status };
        if (endTime is { } end) body["end_time"] = end;
        return SendAsync(HttpMethod.Post, "runs/update", body, cancellation);
    }

    public void Dispose() => http.Dispose();

    /// <summary>A string (or number) at <paramref name="path"/> in an answer, null when the answer has none there.</summary>
    private static string? Text(JsonNode? node, params string[] path)
    {
        foreach (var name in path) node = (node as JsonObject)?[name];
        return node is JsonValue value ? value.GetValueKind() switch
        {
            JsonValueKind.String => value.GetValue<string>(),
            JsonValueKind.Number => value.ToJsonString(),
            _ => null,
        } : null;
    }

    private static JsonArray Pairs(IEnumerable<KeyValuePair<string, string>> pairs) =>
        new(pairs.Select(p => (JsonNode)new JsonObject { ["key"] = p.Key, ["value"] = p.Value }).ToArray());

    /// <summary>A double as proto3 JSON writes it: a number, or <c>"NaN"</c>, <c>"Infinity"</c>, <c>"-Infinity"</c>.</summary>
    private static JsonNode Number(double value) =>
        double.IsNaN(value) ? JsonValue.Create("NaN")
        : double.IsPositiveInfinity(value) ? JsonValue.Create("Infinity")
        : double.IsNegativeInfinity(value) ? JsonValue.Create("-Infinity")
        : JsonValue.Create(value);

    private async Task<JsonNode> SendAsync(HttpMethod method, string path, JsonObject? body, CancellationToken cancellation)
    {
        var endpoint = path.Split('?')[0];
        var text = body?.ToJsonString();
        for (var attempt = 0; ; attempt++)
        {
            string? failure;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
                timeout.CancelAfter(options.RequestTimeout);
                using var request = new HttpRequestMessage(method, api + path);
                if (text is not null) request.Content = new StringContent(text, Encoding.UTF8, "application/json");
                using var response = await http.SendAsync(request, timeout.Token);
                var answer = await response.Content.ReadAsStringAsync(timeout.Token);
                if (response.IsSuccessStatusCode) return Parse(answer) ?? new JsonObject();
                var (code, message) = Error(answer);
                failure = $"{endpoint}: HTTP {(int)response.StatusCode}{(code is null ? "" : $" {code}")}{(message is null ? "" : $": {message}")}";
                var retryable = response.StatusCode == HttpStatusCode.TooManyRequests || (int)response.StatusCode >= 500;
                if (!retryable || attempt >= options.Retries) throw new MlflowException(Attempts(failure, attempt), response.StatusCode, code);
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                failure = $"{endpoint}: no answer within {options.RequestTimeout.TotalSeconds:0.#} s";
                if (attempt >= options.Retries) throw new MlflowException(Attempts(failure, attempt));
            }
            catch (HttpRequestException e)
            {
                failure = $"{endpoint}: {e.Message}";
                if (attempt >= options.Retries) throw new MlflowException(Attempts(failure, attempt));
            }
            await Task.Delay(options.RetryDelay * Math.Pow(2, attempt), cancellation);
        }
    }

    private static string Attempts(string failure, int attempt) => attempt == 0 ? failure : $"{failure} (after {attempt + 1} attempts)";

    private static JsonNode? Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static (string? Code, string? Message) Error(string answer)
    {
        if (Parse(answer) is JsonObject error) return (Text(error, "error_code"), Text(error, "message"));
        var snippet = answer.Trim();
        return (null, snippet.Length == 0 ? null : snippet.Length > 200 ? snippet[..200] + "..." : snippet);
    }
}

/// <summary>MLflow's documented limits on one <c>runs/log-batch</c> request and on values.</summary>
public static class MlflowLimits
{
    /// <summary>Metrics per request.</summary>
    public const int MetricsPerBatch = 1000;

    /// <summary>Params per request.</summary>
    public const int ParamsPerBatch = 100;

    /// <summary>Tags per request.</summary>
    public const int TagsPerBatch = 100;

    /// <summary>Metrics, params and tags together per request.</summary>
    public const int EntitiesPerBatch = 1000;

    /// <summary>Characters of a param value.</summary>
    public const int ParamValueLength = 6000;

    /// <summary>Characters of a tag value every storage backend accepts.</summary>
    public const int TagValueLength = 5000;

    /// <summary>Characters of a param, metric or tag key.</summary>
    public const int KeyLength = 250;
}

/// <summary>One metric value for <c>runs/log-batch</c>.</summary>
/// <param name="Key">The metric's name (<c>minibatch_loss</c>, <c>val_top1_accuracy</c>...).</param>
/// <param name="Value">Its value.</param>
/// <param name="Timestamp">When it was taken, in Unix milliseconds.</param>
/// <param name="Step">The train minibatch count (minibatch metrics) or the 1-based epoch (epoch metrics).</param>
public sealed record MlflowMetric(string Key, double Value, long Timestamp, long Step);
