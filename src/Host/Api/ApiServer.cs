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
/// (stop, resume, delete, clone) and the IC log. Kestrel on a loopback address by default; while it runs,
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
/// <see cref="MaxBodyBytes"/>; 403 for a Host header that is not a name of this server (DNS rebinding) or an
/// <c>Origin</c> other than the server's own (a web page elsewhere); 401 with <see cref="ErrorView"/> for a request
/// without the access token, when the server has one; 500 with <see cref="ErrorView"/> when the experiment fails to
/// answer. Unknown query parameters are ignored.</para>
/// <para>Access: on loopback without a configured token, anyone on this machine may call it (as any local process
/// could read the experiment's files). Any other address needs an access token (generated when none is configured);
/// then every request carries it: <c>Authorization: Bearer TOKEN</c>, or <c>?token=TOKEN</c> once in a browser (a
/// cookie carries it from there), see <see cref="ApiServerOptions"/> and <see cref="ApiToken"/>. The token is written to
/// <c>&lt;experiment folder&gt;/host.token</c> (owner-only) for the <c>rapidfire runs</c> verbs, never to
/// <c>host.json</c>.</para>
/// </remarks>
public sealed class ApiServer : IAsyncDisposable
{
    /// <summary>The largest request body accepted (a clone's knob changes are far smaller).</summary>
    public const long MaxBodyBytes = 64 * 1024;

    private readonly WebApplication app;
    private readonly string experimentPath;
    private int disposed;

    private ApiServer(WebApplication app, string url, string listenUrl, string? token, bool tokenGenerated, string experimentPath)
    {
        this.app = app;
        Url = url;
        ListenUrl = listenUrl;
        Token = token;
        TokenGenerated = tokenGenerated;
        this.experimentPath = experimentPath;
    }

    /// <summary>
    /// The API's base URL from this machine, <c>http://127.0.0.1:PORT</c>: the bound address, or loopback for a server
    /// bound to every address (<c>0.0.0.0</c>, <c>::</c>). <c>host.json</c> names it.
    /// </summary>
    public string Url { get; }

    /// <summary>Where it listens, <c>http://0.0.0.0:PORT</c> for every IPv4 address; the same as <see cref="Url"/> on loopback.</summary>
    public string ListenUrl { get; }

    /// <summary>The access token every request must carry, or null when none is asked for (loopback without a configured token).</summary>
    public string? Token { get; }

    /// <summary>Whether <see cref="Token"/> was generated at start (none was configured): the caller prints it, as nothing else shows it.</summary>
    public bool TokenGenerated { get; }

    /// <summary>
    /// The URL that opens the server in a browser: <see cref="Url"/> with <c>?token=TOKEN</c> when there is a token (the
    /// server then sets its cookie and drops the token from the address bar). For another machine, put this machine's
    /// name or address in place of the host.
    /// </summary>
    public string BrowserUrl => Token is null ? Url + "/" : $"{Url}/?token={Uri.EscapeDataString(Token)}";

    /// <summary>
    /// Starts serving <paramref name="control"/> on <paramref name="address"/>:<paramref name="port"/> (0: a free port)
    /// and writes its <see cref="HostFile"/> into the experiment folder. The access token is the
    /// <see cref="ApiServerOptions.TokenVariable"/> environment variable's when it is set; else a non-loopback address
    /// is refused (see <see cref="ApiServerOptions.GenerateToken"/>).
    /// </summary>
    /// <param name="control">The experiment to serve.</param>
    /// <param name="port">The TCP port; 0 picks a free one.</param>
    /// <param name="address">An IP address (<c>127.0.0.1</c>, <c>::1</c>, <c>0.0.0.0</c>, ...) or <c>localhost</c>.</param>
    /// <exception cref="ArgumentException">The address is not an IP address or localhost, or the configured token is malformed.</exception>
    /// <exception cref="IOException">The port is taken, or the address is not one of this machine's.</exception>
    public static Task<ApiServer> StartAsync(IExperimentControl control, int port = 0, string address = "127.0.0.1") =>
        StartAsync(control, ApiServerOptions.From() with { Port = port, Address = address });

    /// <summary>
    /// Why the fixed port of <paramref name="options"/> cannot be listened on now (another process holds it), or null:
    /// checked before a fit starts, so that a taken port stops it before anything trains. Port 0 is always free.
    /// </summary>
    public static string? PortProblem(ApiServerOptions options)
    {
        if (options.Port == 0) return null;
        try
        {
            var probe = new System.Net.Sockets.TcpListener(Address(options.Address), options.Port);
            probe.Start();
            probe.Stop();
            return null;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return e.Message;
        }
        catch (ArgumentException)
        {
            return null; // a bad address or port is StartAsync's to name
        }
    }

    /// <summary>
    /// Starts serving <paramref name="control"/> as <paramref name="options"/> say (taken as they are: no environment
    /// variable is read; <see cref="ApiServerOptions.From"/> reads them) and writes its <see cref="HostFile"/>, and its
    /// token's <c>host.token</c> when it has one, into the experiment folder.
    /// </summary>
    /// <param name="control">The experiment to serve.</param>
    /// <param name="options">Address, port, access token, extra host names.</param>
    /// <exception cref="ArgumentException">The address is not an IP address or localhost, or the token is malformed.</exception>
    /// <exception cref="IOException">The port is taken, or the address is not one of this machine's.</exception>
    public static async Task<ApiServer> StartAsync(IExperimentControl control, ApiServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(control);
        ArgumentNullException.ThrowIfNull(options);
        var port = options.Port;
        ArgumentOutOfRangeException.ThrowIfNegative(port, nameof(options.Port));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort, nameof(options.Port));
        var ip = Address(options.Address);
        var loopback = IPAddress.IsLoopback(ip);
        var token = string.IsNullOrEmpty(options.Token) ? null : options.Token;
        if (token is not null && ApiToken.Problem(token) is { } problem) throw new ArgumentException(problem, nameof(options));
        var generated = token is null && !loopback;
        if (generated && !options.GenerateToken)
            throw new ArgumentException($"binding to {options.Address} (not loopback) needs an access token: configure one " +
                $"({ApiServerOptions.TokenVariable}, {ApiServerOptions.Section}.token) or let the server generate one " +
                "(ApiServerOptions.GenerateToken; rapidfire fit does, and prints it)", nameof(options));
        if (generated) token = ApiToken.Generate();
        var access = new ApiAccess(token, loopback, options.AllowedHosts);

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
        app.Use(access.Check); // before everything served: API, pages, static files, event streams
        Map(app, control);
        try
        {
            await app.StartAsync();
            var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single());
            var listenUrl = UrlOf(ip, bound.Port);
            var url = ip.Equals(IPAddress.Any) ? UrlOf(IPAddress.Loopback, bound.Port)
                : ip.Equals(IPAddress.IPv6Any) ? UrlOf(IPAddress.IPv6Loopback, bound.Port)
                : listenUrl;
            Directory.CreateDirectory(control.Path);
            if (token is not null) ApiToken.Write(control.Path, token); // before host.json: a client that finds the host finds its token
            HostFile.Write(control.Path, new HostFile(url, Environment.ProcessId, control.Name, DateTime.UtcNow));
            return new ApiServer(app, url, listenUrl, token, generated, control.Path);
        }
        catch (Exception e)
        {
            if (token is not null) ApiToken.DeleteIfOurs(control.Path, token);
            await app.DisposeAsync(); // a taken port, an unwritable folder: nothing stays listening
            // An address that is not this machine's: an I/O error like a taken port (Kestrel reports that one as IOException).
            if (e is System.Net.Sockets.SocketException socket)
                throw new IOException($"the API cannot listen on {options.Address} port {port}: {socket.Message}", socket);
            throw;
        }
    }

    /// <summary>Stops serving and deletes the host file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 1) return;
        HostFile.DeleteIfOurs(experimentPath, Url);
        if (Token is not null) ApiToken.DeleteIfOurs(experimentPath, Token);
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await app.StopAsync(grace.Token);
        await app.DisposeAsync();
    }

    private static IPAddress Address(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (string.Equals(address, "localhost", StringComparison.OrdinalIgnoreCase)) return IPAddress.Loopback;
        if (IPAddress.TryParse(address.Trim('[', ']'), out var ip)) return ip;
        throw new ArgumentException(
            $"the API listens on an IP address (127.0.0.1, ::1, 0.0.0.0, ::, or one of this machine's) or localhost, not '{address}'",
            nameof(address));
    }

    private static string UrlOf(IPAddress ip, int port) =>
        string.Create(CultureInfo.InvariantCulture, $"http://{(ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString())}:{port}");

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
            var snapshot = await control.RunsAsync(http.RequestAborted);
            var run = snapshot.Runs.FirstOrDefault(r => r.RunId == runId);
            return run is null ? await Missing(control, snapshot, runId, http.RequestAborted) : Json(RunView.Of(run));
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
            var runs = await control.RunsAsync(http.RequestAborted);
            if (runs.Runs.All(r => r.RunId != runId)) return await Missing(control, runs, runId, http.RequestAborted);
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

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a clone's body: <c>{"set": {path: value}, "warm": bool}</c>, both optional; an empty body is <c>{}</c>.</summary>
    private static async Task<(Dictionary<string, string>? Changes, bool Warm, string? Problem)> ReadClone(HttpContext http)
    {
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer, http.RequestAborted); // over MaxBodyBytes: Kestrel's 413
        var changes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (buffer.Length == 0) return (changes, false, null);
        try
        {
            _ = StrictUtf8.GetCharCount(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            return (null, false, $"the clone body is not valid UTF-8 (at byte {e.Index})");
        }
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

    /// <summary>
    /// The answer about a run the experiment does not have (yet): a clone whose operation is pending (409: its id is
    /// handed out, the run is made at its parent's next chunk boundary), a fit still starting (503: its runs are being
    /// made), else 404.
    /// </summary>
    private static async Task<IResult> Missing(IExperimentControl control, RunsSnapshot snapshot, int runId, CancellationToken cancellation)
    {
        if ((await control.ControlLogAsync(cancellation)).FirstOrDefault(c => c.NewRunId == runId && c.Status == ControlStatus.Pending) is { } clone)
            return Error($"run {runId} is the clone of run {clone.Op.RunId} asked for in operation {clone.OpId}, not made yet: it is made at " +
                         $"run {clone.Op.RunId}'s next chunk boundary; ask again then", StatusCodes.Status409Conflict);
        if (snapshot.Fitting && snapshot.Runs.Count == 0)
            return new RetryLater(Error($"experiment {control.Name} has no runs yet: its fit is starting; ask again in a moment",
                StatusCodes.Status503ServiceUnavailable));
        return UnknownRun(control, runId);
    }

    /// <summary>An answer with <c>Retry-After: 1</c>.</summary>
    private sealed class RetryLater(IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext http)
        {
            http.Response.Headers.RetryAfter = "1";
            return inner.ExecuteAsync(http);
        }
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

    /// <summary>A host lifetime that neither waits for nor reacts to console signals.</summary>
    private sealed class PassiveLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
