using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RapidFire.Actors.Control;

namespace RapidFire.Host.Api;

/// <summary>
/// The HTTP JSON API of a running experiment, over its <see cref="IExperimentControl"/>: its runs, the IC operations
/// (stop, resume, delete, clone) and the IC log. Kestrel on a loopback address; while it runs,
/// <c>&lt;experiment folder&gt;/host.json</c> (<see cref="HostFile"/>) says where it listens.
/// </summary>
/// <remarks>
/// <para>Endpoints (JSON, snake_case names, see <see cref="ApiJson"/>):</para>
/// <list type="bullet">
/// <item><c>GET /api/experiment</c>: <see cref="ExperimentView"/>.</item>
/// <item><c>GET /api/runs[?all=true]</c>: the runs (<see cref="RunView"/>), deleted ones only with <c>all=true</c>.</item>
/// <item><c>GET /api/runs/{id}</c>: one run, deleted or not.</item>
/// <item><c>POST /api/runs/{id}/stop|resume|delete</c>: the <see cref="OutcomeView"/>; any body is ignored.</item>
/// <item><c>POST /api/runs/{id}/clone</c> with <c>{"set": {"optimizer.args.lr": 0.01, "hidden": "64"}, "warm": true}</c>
/// (both fields optional): the <see cref="OutcomeView"/>. A string value is passed on as it is, so <c>"64"</c> means
/// what <c>--set hidden=64</c> means (JSON when it parses as JSON, else a string; write <c>"\"64\""</c> for the string
/// 64); any other JSON value is passed on as its JSON text.</item>
/// <item><c>GET /api/ic-log</c>: <see cref="ControlLogEntry"/> list, oldest first.</item>
/// <item>The web dashboard: <c>GET /</c>, <c>/dashboard/{file}</c>, <c>/api/events</c> (server-sent events),
/// <c>/api/runs/{id}/metrics</c>, <c>/api/log?tail=N</c>, <c>/api/status</c> (see <see cref="Dashboard.DashboardEndpoints"/>).</item>
/// </list>
/// <para>Status codes: 200 for a pending, applied or dropped operation; 409 for a rejected one (the body is still the
/// outcome); 404 with <see cref="ErrorView"/> for an unknown run or endpoint; 400 for a run id that is not a positive
/// integer, an <c>all</c> that is not a boolean, or a malformed clone body (not JSON, not an object, <c>set</c> not an
/// object, an empty or repeated knob path, <c>warm</c> not a boolean, an unknown field: fields are checked, not
/// ignored, so a typo like <c>"warn"</c> is not silently a cold clone); 413 for a body over
/// <see cref="MaxBodyBytes"/>; 403 for a Host header that is not a loopback host (DNS rebinding) or an
/// <c>Origin</c> other than the server's own (a web page elsewhere); 500 with <see cref="ErrorView"/> when the
/// experiment fails to answer. Unknown query parameters are ignored.</para>
/// </remarks>
public sealed class ApiServer : IAsyncDisposable
{
    /// <summary>The largest request body accepted (a clone's knob changes are far smaller).</summary>
    public const long MaxBodyBytes = 64 * 1024;

    private readonly WebApplication app;
    private readonly string experimentPath;
    private int disposed;

    private ApiServer(WebApplication app, string url, string experimentPath)
    {
        this.app = app;
        Url = url;
        this.experimentPath = experimentPath;
    }

    /// <summary>The API's base URL, <c>http://127.0.0.1:PORT</c>.</summary>
    public string Url { get; }

    /// <summary>
    /// Starts serving <paramref name="control"/> on <paramref name="address"/>:<paramref name="port"/> (0: a free port)
    /// and writes its <see cref="HostFile"/> into the experiment folder.
    /// </summary>
    /// <param name="control">The experiment to serve.</param>
    /// <param name="port">The TCP port; 0 picks a free one.</param>
    /// <param name="address">A loopback address: <c>127.0.0.1</c>, <c>::1</c> or <c>localhost</c>.</param>
    /// <exception cref="ArgumentException">The address is not a loopback address.</exception>
    /// <exception cref="IOException">The port is taken.</exception>
    public static async Task<ApiServer> StartAsync(IExperimentControl control, int port = 0, string address = "127.0.0.1")
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);
        var ip = Loopback(address);

        // The empty builder reads no appsettings or environment and adds no logging provider: nothing reaches the console.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "rapidfire-api" });
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(ip, port);
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = MaxBodyBytes;
        });
        builder.Services.AddRoutingCore();
        // The CLI owns Ctrl+C (it cancels the fit); the default console lifetime would also stop the server on it.
        builder.Services.AddSingleton<IHostLifetime, PassiveLifetime>();
        var app = builder.Build();
        app.Use(AnswerErrors);
        app.Use(RefuseBrowsersElsewhere);
        Map(app, control);
        try
        {
            await app.StartAsync();
            var url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
            Directory.CreateDirectory(control.Path);
            HostFile.Write(control.Path, new HostFile(url, Environment.ProcessId, control.Name, DateTime.UtcNow));
            return new ApiServer(app, url, control.Path);
        }
        catch
        {
            await app.DisposeAsync(); // a taken port, an unwritable folder: nothing stays listening
            throw;
        }
    }

    /// <summary>Stops serving and deletes the host file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        HostFile.DeleteIfOurs(experimentPath, Url);
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await app.StopAsync(grace.Token);
        await app.DisposeAsync();
    }

    private static IPAddress Loopback(string address)
    {
        if (string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(address, out var ip) && IPAddress.IsLoopback(ip)) return ip;
        throw new ArgumentException(
            $"the API listens on a loopback address only (127.0.0.1, ::1 or localhost), not '{address}': serving it to " +
            "other machines lets them stop, delete and clone runs, so binding elsewhere needs the access token of the " +
            "dashboard issue, which is not built yet", nameof(address));
    }

    private static void Map(WebApplication app, IExperimentControl control)
    {
        // Handlers state their return type: `async (HttpContext http) => Json(...)` would bind to RequestDelegate and
        // drop the result (an empty 200).
        app.MapGet("/api/experiment", async Task<IResult> (HttpContext http) =>
            Json(new ExperimentView(control.Name, control.Path, (await control.RunsAsync(http.RequestAborted)).Fitting)));

        app.MapGet("/api/runs", async Task<IResult> (HttpContext http) =>
        {
            if (!TryAll(http.Request.Query, out var all, out var problem)) return Error(problem, StatusCodes.Status400BadRequest);
            var snapshot = await control.RunsAsync(http.RequestAborted);
            return Json(snapshot.Runs.Where(r => all || r.Status != Actors.Runs.RunStatus.Deleted).Select(RunView.Of).ToList());
        });

        app.MapGet("/api/runs/{id}", async Task<IResult> (string id, HttpContext http) =>
        {
            if (!TryRunId(id, out var runId, out var problem)) return Error(problem, StatusCodes.Status400BadRequest);
            var run = (await control.RunsAsync(http.RequestAborted)).Runs.FirstOrDefault(r => r.RunId == runId);
            return run is null ? UnknownRun(control, runId) : Json(RunView.Of(run));
        });

        app.MapPost("/api/runs/{id}/{operation}", async Task<IResult> (string id, string operation, HttpContext http) =>
        {
            if (operation is not ("stop" or "resume" or "delete" or "clone"))
                return Error($"there is no operation '{operation}': POST /api/runs/{{id}}/stop, resume, delete or clone", StatusCodes.Status404NotFound);
            if (!TryRunId(id, out var runId, out var problem)) return Error(problem, StatusCodes.Status400BadRequest);
            ControlOp op;
            if (operation == "clone")
            {
                var (changes, warm, bodyProblem) = await ReadClone(http);
                if (bodyProblem is not null) return Error(bodyProblem, StatusCodes.Status400BadRequest);
                op = ControlOp.CloneOf(runId, changes!, warm);
            }
            else op = operation switch { "stop" => ControlOp.Stop(runId), "resume" => ControlOp.Resume(runId), _ => ControlOp.Delete(runId) };

            // Known runs only: the runtime's refusal of an unknown id would be a 409 like any other refusal.
            if ((await control.RunsAsync(http.RequestAborted)).Runs.All(r => r.RunId != runId)) return UnknownRun(control, runId);
            var outcome = await control.ControlAsync(op, http.RequestAborted);
            return Json(OutcomeView.Of(outcome), outcome.Status == ControlStatus.Rejected ? StatusCodes.Status409Conflict : StatusCodes.Status200OK);
        });

        app.MapGet("/api/ic-log", async Task<IResult> (HttpContext http) =>
            Json((await control.ControlLogAsync(http.RequestAborted)).Select(ControlLogEntry.Of).ToList()));

        MapDashboard(app, control);

        app.MapFallback("{*path}", IResult (HttpContext http) =>
            Error($"there is no endpoint {http.Request.Method} {http.Request.Path}: see /api/experiment, /api/runs, /api/runs/{{id}}, /api/ic-log",
                StatusCodes.Status404NotFound));
    }

    /// <summary>The web dashboard at <c>/</c> and its endpoints (<c>/api/events</c>, <c>/api/runs/{id}/metrics</c>, <c>/api/log</c>, <c>/api/status</c>): see <see cref="Dashboard.DashboardEndpoints"/>.</summary>
    private static void MapDashboard(WebApplication app, IExperimentControl control) => Dashboard.DashboardEndpoints.Map(app, control);

    /// <summary>Reads a clone's body: <c>{"set": {path: value}, "warm": bool}</c>, both optional; an empty body is <c>{}</c>.</summary>
    private static async Task<(Dictionary<string, string>? Changes, bool Warm, string? Problem)> ReadClone(HttpContext http)
    {
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, http.RequestAborted); // over MaxBodyBytes: Kestrel's 413
        var changes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (buffer.Length == 0) return (changes, false, null);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(buffer.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            return (null, false, $"the clone body is not JSON: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                return (null, false, $"the clone body must be a JSON object {{\"set\": {{...}}, \"warm\": true}}, not {Kind(root)}");
            var warm = false;
            foreach (var field in root.EnumerateObject())
                switch (field.Name)
                {
                    case "set" when field.Value.ValueKind == JsonValueKind.Object:
                        foreach (var knob in field.Value.EnumerateObject())
                        {
                            if (string.IsNullOrWhiteSpace(knob.Name)) return (null, false, "set has an empty knob path");
                            if (!changes.TryAdd(knob.Name, knob.Value.ValueKind == JsonValueKind.String ? knob.Value.GetString()! : knob.Value.GetRawText()))
                                return (null, false, $"set names knob '{knob.Name}' twice");
                        }
                        break;
                    case "set":
                        return (null, false, $"set must be an object of knob paths to values, like {{\"optimizer.args.lr\": 0.01}}, not {Kind(field.Value)}");
                    case "warm" when field.Value.ValueKind is JsonValueKind.True or JsonValueKind.False:
                        warm = field.Value.GetBoolean();
                        break;
                    case "warm":
                        return (null, false, $"warm must be true or false, not {Kind(field.Value)}");
                    default:
                        return (null, false, $"unknown field '{field.Name}' in the clone body: its fields are set and warm");
                }
            return (changes, warm, null);
        }
    }

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => $"the string {value.GetRawText()}",
        _ => value.GetRawText(),
    };

    private static bool TryRunId(string text, out int runId, out string problem)
    {
        problem = "";
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out runId) && runId > 0) return true;
        problem = $"run id '{text}' is not a positive integer";
        return false;
    }

    private static bool TryAll(IQueryCollection query, out bool all, out string problem)
    {
        problem = "";
        all = false;
        if (!query.TryGetValue("all", out var values)) return true;
        var text = values.ToString();
        if (text.Length == 0) return all = true; // ?all
        if (bool.TryParse(text, out all)) return true;
        problem = $"all must be true or false, not '{text}'";
        return false;
    }

    private static IResult UnknownRun(IExperimentControl control, int runId) =>
        Error($"there is no run {runId} in experiment {control.Name}", StatusCodes.Status404NotFound);

    private static IResult Json<T>(T value, int status = StatusCodes.Status200OK) =>
        Results.Json(value, ApiJson.Options, statusCode: status);

    private static IResult Error(string message, int status) => Json(new ErrorView(message), status);

    /// <summary>Any failure becomes a JSON error naming the request: a bad request keeps its status (413...), others are 500.</summary>
    private static async Task AnswerErrors(HttpContext http, RequestDelegate next)
    {
        try
        {
            await next(http);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            var (status, message) = e is BadHttpRequestException bad
                ? (bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? $"the body is over {MaxBodyBytes} bytes" : bad.Message)
                : (StatusCodes.Status500InternalServerError, e.Message);
            http.Response.Clear();
            await Error($"{http.Request.Method} {http.Request.Path} failed: {message}", status).ExecuteAsync(http);
        }
    }

    /// <summary>
    /// Loopback is not a wall against a browser on this machine: a page from anywhere may POST to 127.0.0.1 (a simple
    /// cross-origin request needs no preflight), and a rebound DNS name reaches it with a foreign Host header. So a
    /// request must name a loopback host, and one with an <c>Origin</c> must come from this server's own origin.
    /// </summary>
    private static async Task RefuseBrowsersElsewhere(HttpContext http, RequestDelegate next)
    {
        var port = http.Connection.LocalPort;
        if (!IsLoopbackHost(http.Request.Host.Host))
        {
            await Error($"the Host header '{http.Request.Host}' is not a loopback host", StatusCodes.Status403Forbidden).ExecuteAsync(http);
            return;
        }
        if (http.Request.Headers.Origin.Count > 0)
        {
            var origin = http.Request.Headers.Origin.ToString();
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || !IsLoopbackHost(uri.Host) || uri.Port != port)
            {
                await Error($"requests from the web origin '{origin}' are refused: the API answers its own origin and non-browser clients only",
                    StatusCodes.Status403Forbidden).ExecuteAsync(http);
                return;
            }
        }
        await next(http);
    }

    private static bool IsLoopbackHost(string host) =>
        string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ||
        (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>A host lifetime that neither waits for nor reacts to console signals.</summary>
    private sealed class PassiveLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
