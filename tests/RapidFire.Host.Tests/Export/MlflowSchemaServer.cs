using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace RapidFire.Host.Tests.Export;

/// <summary>
/// A stand-in MLflow tracking server on loopback (no MLflow server can be installed here): the five REST API 2.0
/// endpoints the exporter calls, each request checked strictly against MLflow's documented schema (required fields,
/// JSON types, enum values, no unknown fields, the log-batch limits, key names, value lengths, params that may not
/// change), recorded, and answered as MLflow answers: its response shapes, and 400 with
/// <c>{"error_code": "INVALID_PARAMETER_VALUE", "message": ...}</c> for a violation.
/// </summary>
/// <remarks>
/// Schemas from the MLflow REST API reference (mlflow.org/docs/latest/rest-api.html): CreateExperiment, GetExperimentByName,
/// CreateRun (experiment_id, user_id, run_name, start_time int64, tags [RunTag]), LogBatch (run_id, metrics [Metric: key,
/// value double, timestamp int64, step int64], params [Param: key, value], tags [RunTag]; at most 1000 metrics, 100
/// params, 100 tags, 1000 in all), UpdateRun (run_id, run_uuid, status RunStatus, end_time int64, run_name). int64 may
/// be a JSON integer or a string of one, a double a number or "NaN"/"Infinity"/"-Infinity", as proto3 JSON allows.
/// </remarks>
internal sealed class MlflowSchemaServer : IAsyncDisposable
{
    public sealed record Exchange(string Method, string Path, string? Body, int Status, string? Authorization);

    public sealed record Metric(string Key, double Value, long Timestamp, long Step);

    public sealed class Run
    {
        public required string RunId { get; init; }
        public required string ExperimentId { get; init; }
        public required string RunName { get; init; }
        public required long StartTime { get; init; }
        public string Status { get; set; } = "RUNNING";
        public long? EndTime { get; set; }
        public Dictionary<string, string> Tags { get; } = [];
        public Dictionary<string, string> Params { get; } = [];
        public List<Metric> Metrics { get; } = [];
        public List<(string Status, long? EndTime)> StatusHistory { get; } = [];

        public IEnumerable<Metric> MetricsOf(string key) => Metrics.Where(m => m.Key == key);
    }

    private static readonly string[] RunStatuses = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];
    private static readonly Regex KeyPattern = new(@"^[/\w.\- ]*$", RegexOptions.Compiled);

    private readonly WebApplication app;
    private readonly object gate = new();
    private readonly Dictionary<string, string> experiments = []; // id -> name
    private readonly Dictionary<string, Run> runs = [];
    private int failuresLeft;

    private MlflowSchemaServer(WebApplication app) => this.app = app;

    /// <summary>The tracking URI to give the exporter.</summary>
    public string Url { get; private set; } = "";

    /// <summary>Every request, in arrival order, with the status it was answered.</summary>
    public ConcurrentQueue<Exchange> Exchanges { get; } = new();

    /// <summary>When set, every request answered with this status (an MLflow server that is down behind a proxy).</summary>
    public int? FailEverythingWith { get; set; }

    /// <summary>When set, every request answered with this status and body (a proxy's page at the wrong address).</summary>
    public (int Status, string Body)? AnswerEverythingWith { get; set; }

    /// <summary>When set, requests must carry this <c>Authorization</c> header (else 401).</summary>
    public string? RequiredAuthorization { get; set; }

    /// <summary>The next <paramref name="count"/> requests are answered 503.</summary>
    public void FailNext(int count) => Interlocked.Exchange(ref failuresLeft, count);

    /// <summary>The requests answered 400: a schema violation by the exporter.</summary>
    public IReadOnlyList<Exchange> Rejected => Exchanges.Where(e => e.Status == 400).ToList();

    public IReadOnlyDictionary<string, string> Experiments
    {
        get { lock (gate) return new Dictionary<string, string>(experiments); }
    }

    public IReadOnlyList<Run> Runs
    {
        get { lock (gate) return runs.Values.OrderBy(r => r.StartTime).ThenBy(r => r.RunName, StringComparer.Ordinal).ToList(); }
    }

    public Run RunNamed(string name) => Runs.Single(r => r.RunName == name);

    public static async Task<MlflowSchemaServer> StartAsync()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "mlflow-schema-server" });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddRoutingCore();
        var app = builder.Build();
        var server = new MlflowSchemaServer(app);
        app.Run(server.Handle);
        await app.StartAsync();
        server.Url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private sealed class Invalid(string message, string code = "INVALID_PARAMETER_VALUE", int status = 400) : Exception(message)
    {
        public string Code { get; } = code;
        public int Status { get; } = status;
    }

    private async Task Handle(HttpContext http)
    {
        var request = http.Request;
        var body = request.ContentLength is > 0 || request.Method == "POST" ? await new StreamReader(request.Body).ReadToEndAsync() : null;
        var auth = request.Headers.Authorization.ToString();
        if (AnswerEverythingWith is { } canned)
        {
            Exchanges.Enqueue(new Exchange(request.Method, request.Path.Value ?? "", body, canned.Status, auth.Length == 0 ? null : auth));
            http.Response.StatusCode = canned.Status;
            await http.Response.WriteAsync(canned.Body);
            return;
        }
        int status;
        JsonNode answer;
        try
        {
            if (FailEverythingWith is { } failure) throw new Invalid("the tracking server is down", "INTERNAL_ERROR", failure);
            if (Interlocked.Decrement(ref failuresLeft) >= 0) throw new Invalid("temporarily unavailable", "TEMPORARILY_UNAVAILABLE", 503);
            if (RequiredAuthorization is { } required && auth != required) throw new Invalid("credentials are required", "UNAUTHENTICATED", 401);
            lock (gate) answer = Route(request.Method, request.Path.Value ?? "", request, body);
            status = 200;
        }
        catch (Invalid e)
        {
            status = e.Status;
            answer = new JsonObject { ["error_code"] = e.Code, ["message"] = e.Message };
        }
        Exchanges.Enqueue(new Exchange(request.Method, request.Path.Value ?? "", body, status, auth.Length == 0 ? null : auth));
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(answer.ToJsonString());
    }

    private JsonNode Route(string method, string path, HttpRequest request, string? body)
    {
        const string prefix = "/api/2.0/mlflow/";
        var endpoint = path.StartsWith(prefix, StringComparison.Ordinal) ? path[prefix.Length..] : "";
        return (method, endpoint) switch
        {
            ("GET", "experiments/get-by-name") => GetExperimentByName(request),
            ("POST", "experiments/create") => CreateExperiment(Object(request, body, CreateExperimentSchema)),
            ("POST", "runs/create") => CreateRun(Object(request, body, CreateRunSchema)),
            ("POST", "runs/log-batch") => LogBatch(Object(request, body, LogBatchSchema)),
            ("POST", "runs/update") => UpdateRun(Object(request, body, UpdateRunSchema)),
            _ => throw new Invalid($"no endpoint {method} {path}", "ENDPOINT_NOT_FOUND", 404),
        };
    }

    // ---- endpoints -------------------------------------------------------------------------------------------------

    private JsonNode GetExperimentByName(HttpRequest request)
    {
        var names = request.Query["experiment_name"];
        if (names.Count != 1 || string.IsNullOrEmpty(names[0]))
            throw new Invalid("Missing value for required parameter 'experiment_name'.");
        var found = experiments.FirstOrDefault(e => e.Value == names[0]);
        if (found.Key is null)
            throw new Invalid($"Could not find experiment with name '{names[0]}'", "RESOURCE_DOES_NOT_EXIST", 404);
        return new JsonObject { ["experiment"] = ExperimentJson(found.Key, found.Value) };
    }

    private JsonNode CreateExperiment(JsonElement body)
    {
        var name = body.GetProperty("name").GetString()!;
        if (name.Length == 0) throw new Invalid("Invalid value \"\" for parameter 'name' supplied.");
        if (experiments.ContainsValue(name))
            throw new Invalid($"Experiment '{name}' already exists.", "RESOURCE_ALREADY_EXISTS");
        var id = (experiments.Count + 1).ToString(CultureInfo.InvariantCulture);
        experiments[id] = name;
        return new JsonObject { ["experiment_id"] = id };
    }

    private JsonNode CreateRun(JsonElement body)
    {
        if (!body.TryGetProperty("experiment_id", out var experiment) || !experiments.ContainsKey(experiment.GetString()!))
            throw new Invalid($"Could not find experiment with ID {(body.TryGetProperty("experiment_id", out var e) ? e.GetString() : "(none)")}",
                "RESOURCE_DOES_NOT_EXIST", 404);
        var run = new Run
        {
            RunId = Guid.NewGuid().ToString("N"),
            ExperimentId = experiment.GetString()!,
            RunName = body.TryGetProperty("run_name", out var name) ? name.GetString()! : "",
            StartTime = body.TryGetProperty("start_time", out var start) ? Int64(start) : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        };
        foreach (var (key, value) in Pairs(body, "tags", MaxTagValue)) run.Tags[key] = value;
        runs[run.RunId] = run;
        return new JsonObject
        {
            ["run"] = new JsonObject
            {
                ["info"] = RunInfo(run),
                ["data"] = new JsonObject { ["tags"] = new JsonArray(run.Tags.Select(t => (JsonNode)new JsonObject { ["key"] = t.Key, ["value"] = t.Value }).ToArray()) },
                ["inputs"] = new JsonObject(),
            },
        };
    }

    private JsonNode LogBatch(JsonElement body)
    {
        var run = RunOf(body);
        var metrics = body.TryGetProperty("metrics", out var m) ? m.GetArrayLength() : 0;
        var parameters = body.TryGetProperty("params", out var p) ? p.GetArrayLength() : 0;
        var tags = body.TryGetProperty("tags", out var t) ? t.GetArrayLength() : 0;
        if (metrics > 1000) throw new Invalid($"A batch logging request can contain at most 1000 metrics. Got {metrics} metrics.");
        if (parameters > 100) throw new Invalid($"A batch logging request can contain at most 100 params. Got {parameters} params.");
        if (tags > 100) throw new Invalid($"A batch logging request can contain at most 100 tags. Got {tags} tags.");
        if (metrics + parameters + tags > 1000)
            throw new Invalid($"A batch logging request can contain at most 1000 metrics, params, and tags in total. Got {metrics + parameters + tags}.");

        var newParams = Pairs(body, "params", MaxParamValue);
        foreach (var group in newParams.GroupBy(kv => kv.Key).Where(g => g.Select(kv => kv.Value).Distinct().Count() > 1))
            throw new Invalid($"Duplicate parameter keys have been submitted: [{group.Key}].");
        foreach (var (key, value) in newParams)
            if (run.Params.TryGetValue(key, out var old) && old != value)
                throw new Invalid($"Changing param values is not allowed. Param with key='{key}' was already logged with value='{old}' for run ID='{run.RunId}'. Attempted logging new value '{value}'.");
        var newTags = Pairs(body, "tags", MaxTagValue);
        var newMetrics = new List<Metric>();
        if (metrics > 0)
            foreach (var metric in m.EnumerateArray())
            {
                var key = metric.GetProperty("key").GetString()!;
                CheckKey(key, "metric");
                newMetrics.Add(new Metric(key, Double(metric.GetProperty("value")), Int64(metric.GetProperty("timestamp")),
                    metric.TryGetProperty("step", out var step) ? Int64(step) : 0));
            }

        foreach (var (key, value) in newParams) run.Params[key] = value;
        foreach (var (key, value) in newTags) run.Tags[key] = value;
        run.Metrics.AddRange(newMetrics);
        return new JsonObject();
    }

    private JsonNode UpdateRun(JsonElement body)
    {
        var run = RunOf(body);
        if (body.TryGetProperty("status", out var status)) run.Status = status.GetString()!;
        long? end = body.TryGetProperty("end_time", out var endTime) ? Int64(endTime) : null;
        if (end is not null) run.EndTime = end;
        run.StatusHistory.Add((run.Status, end));
        return new JsonObject { ["run_info"] = RunInfo(run) };
    }

    private Run RunOf(JsonElement body)
    {
        var id = body.TryGetProperty("run_id", out var runId) ? runId.GetString()
            : body.TryGetProperty("run_uuid", out var uuid) ? uuid.GetString() : null;
        if (id is null) throw new Invalid("Missing value for required parameter 'run_id'.");
        return runs.TryGetValue(id, out var run) ? run : throw new Invalid($"Run with id={id} not found", "RESOURCE_DOES_NOT_EXIST", 404);
    }

    private static JsonObject ExperimentJson(string id, string name) => new()
    {
        ["experiment_id"] = id,
        ["name"] = name,
        ["artifact_location"] = $"mlflow-artifacts:/{id}",
        ["lifecycle_stage"] = "active",
        ["creation_time"] = 0,
        ["last_update_time"] = 0,
        ["tags"] = new JsonArray(),
    };

    private static JsonObject RunInfo(Run run)
    {
        var info = new JsonObject
        {
            ["run_id"] = run.RunId,
            ["run_uuid"] = run.RunId,
            ["experiment_id"] = run.ExperimentId,
            ["run_name"] = run.RunName,
            ["user_id"] = "",
            ["status"] = run.Status,
            ["start_time"] = run.StartTime,
            ["artifact_uri"] = $"mlflow-artifacts:/{run.ExperimentId}/{run.RunId}/artifacts",
            ["lifecycle_stage"] = "active",
        };
        if (run.EndTime is { } end) info["end_time"] = end;
        return info;
    }

    // ---- schema ----------------------------------------------------------------------------------------------------

    private abstract record FieldType;
    private sealed record StringType : FieldType;
    private sealed record Int64Type : FieldType;
    private sealed record DoubleType : FieldType;
    private sealed record EnumType(string[] Values) : FieldType;
    private sealed record ArrayType(Schema Items) : FieldType;
    private sealed record Schema(string Name, Dictionary<string, (FieldType Type, bool Required)> Fields);

    private static readonly Schema Tag = new("RunTag", new() { ["key"] = (new StringType(), true), ["value"] = (new StringType(), true) });
    private static readonly Schema ExperimentTag = new("ExperimentTag", new() { ["key"] = (new StringType(), true), ["value"] = (new StringType(), true) });
    private static readonly Schema Param = new("Param", new() { ["key"] = (new StringType(), true), ["value"] = (new StringType(), true) });
    private static readonly Schema MetricSchema = new("Metric", new()
    {
        ["key"] = (new StringType(), true),
        ["value"] = (new DoubleType(), true),
        ["timestamp"] = (new Int64Type(), true),
        ["step"] = (new Int64Type(), false),
    });

    private static readonly Schema CreateExperimentSchema = new("CreateExperiment", new()
    {
        ["name"] = (new StringType(), true),
        ["artifact_location"] = (new StringType(), false),
        ["tags"] = (new ArrayType(ExperimentTag), false),
    });

    private static readonly Schema CreateRunSchema = new("CreateRun", new()
    {
        ["experiment_id"] = (new StringType(), true),
        ["user_id"] = (new StringType(), false),
        ["run_name"] = (new StringType(), false),
        ["start_time"] = (new Int64Type(), false),
        ["tags"] = (new ArrayType(Tag), false),
    });

    private static readonly Schema LogBatchSchema = new("LogBatch", new()
    {
        ["run_id"] = (new StringType(), true),
        ["metrics"] = (new ArrayType(MetricSchema), false),
        ["params"] = (new ArrayType(Param), false),
        ["tags"] = (new ArrayType(Tag), false),
    });

    private static readonly Schema UpdateRunSchema = new("UpdateRun", new()
    {
        ["run_id"] = (new StringType(), true),
        ["run_uuid"] = (new StringType(), false),
        ["status"] = (new EnumType(RunStatuses), false),
        ["end_time"] = (new Int64Type(), false),
        ["run_name"] = (new StringType(), false),
    });

    private const int MaxParamValue = 6000;
    private const int MaxTagValue = 5000;

    /// <summary>The request's JSON body, checked against <paramref name="schema"/>.</summary>
    private static JsonElement Object(HttpRequest request, string? body, Schema schema)
    {
        if (request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            throw new Invalid($"{schema.Name}: the Content-Type must be application/json, got '{request.ContentType}'");
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(body ?? "").RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Invalid($"{schema.Name}: the body is not JSON: {e.Message}", "MALFORMED_REQUEST");
        }
        Check(root, schema, schema.Name);
        return root;
    }

    private static void Check(JsonElement value, Schema schema, string where)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new Invalid($"{where}: expected a {schema.Name} object, got {value.ValueKind}");
        foreach (var property in value.EnumerateObject())
        {
            if (!schema.Fields.TryGetValue(property.Name, out var field))
                throw new Invalid($"{where}: {schema.Name} has no field '{property.Name}'");
            CheckType(property.Value, field.Type, $"{where}.{property.Name}");
        }
        foreach (var (name, (_, required)) in schema.Fields)
            if (required && !value.TryGetProperty(name, out _))
                throw new Invalid($"Missing value for required parameter '{name}' in {where}.");
    }

    private static void CheckType(JsonElement value, FieldType type, string where)
    {
        switch (type)
        {
            case StringType when value.ValueKind != JsonValueKind.String:
                throw new Invalid($"{where}: expected a string, got {value.ValueKind}");
            case Int64Type:
                Int64(value, where);
                break;
            case DoubleType:
                Double(value, where);
                break;
            case EnumType e when value.ValueKind != JsonValueKind.String || !e.Values.Contains(value.GetString()):
                throw new Invalid($"{where}: expected one of {string.Join(", ", e.Values)}, got {value}");
            case ArrayType array:
                if (value.ValueKind != JsonValueKind.Array) throw new Invalid($"{where}: expected an array, got {value.ValueKind}");
                var i = 0;
                foreach (var item in value.EnumerateArray()) Check(item, array.Items, $"{where}[{i++}]");
                break;
        }
    }

    private static long Int64(JsonElement value, string where = "value")
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n)) return n;
        if (value.ValueKind == JsonValueKind.String && long.TryParse(value.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n)) return n;
        throw new Invalid($"{where}: expected an int64, got {value}");
    }

    private static double Double(JsonElement value, string where = "value") => value.ValueKind switch
    {
        JsonValueKind.Number => value.GetDouble(),
        JsonValueKind.String when value.GetString() == "NaN" => double.NaN,
        JsonValueKind.String when value.GetString() == "Infinity" => double.PositiveInfinity,
        JsonValueKind.String when value.GetString() == "-Infinity" => double.NegativeInfinity,
        _ => throw new Invalid($"{where}: expected a double, got {value}"),
    };

    private static List<KeyValuePair<string, string>> Pairs(JsonElement body, string field, int maxValue)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        if (!body.TryGetProperty(field, out var array)) return pairs;
        foreach (var item in array.EnumerateArray())
        {
            var key = item.GetProperty("key").GetString()!;
            var value = item.GetProperty("value").GetString()!;
            CheckKey(key, field);
            if (value.Length > maxValue)
                throw new Invalid($"'{key}' of {field}: the value is {value.Length} characters, over the limit of {maxValue}");
            pairs.Add(new(key, value));
        }
        return pairs;
    }

    /// <summary>MLflow's key rule: letters, digits, underscores, dashes, periods, spaces and slashes, a normalized relative path, at most 250 characters.</summary>
    private static void CheckKey(string key, string kind)
    {
        if (key.Length == 0 || key.Length > 250 || !KeyPattern.IsMatch(key) || key.StartsWith('/') || key.EndsWith('/') ||
            key.Contains("//", StringComparison.Ordinal) || key.Split('/').Any(s => s is "." or ".."))
            throw new Invalid($"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).");
    }
}
