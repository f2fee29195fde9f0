using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using RapidFire.Host.Api;

namespace RapidFire.Host.Dashboard;

/// <summary>
/// The web dashboard's part of the HTTP API: the page and its files, the live event stream, and what the page loads
/// first (a run's metrics, the log's tail, the experiment's status). The page works the same against a running fit and
/// against a finished experiment opened read-only; it only calls the API.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>GET /</c>, <c>GET /dashboard</c>: the page (<c>src/Host/Dashboard/index.html</c>).</item>
/// <item><c>GET /dashboard/{path}</c>: its scripts, styles and vendored chart library, embedded in the assembly; 404 for any other path.</item>
/// <item><c>GET /api/events</c>: server-sent events (<see cref="EventStream"/>).</item>
/// <item><c>GET /api/runs/{id}/metrics</c>: <see cref="RunMetrics"/> (every minibatch and closed epoch so far); 404 for an unknown run.</item>
/// <item><c>GET /api/log?tail=N</c>: <see cref="LogView"/>, the last N lines of <c>experiment.log</c> (default 200, at most <see cref="ExperimentLog.MaxTail"/>).</item>
/// <item><c>GET /api/status</c>: <see cref="StatusView"/>.</item>
/// </list>
/// </remarks>
internal static class DashboardEndpoints
{
    /// <summary>Lines <c>GET /api/log</c> returns without <c>tail</c>.</summary>
    public const int DefaultTail = 200;

    // The page loads its own scripts and styles and talks to its own origin only; it is never framed (its buttons stop runs).
    private const string ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    /// <summary>Adds the dashboard's routes for <paramref name="control"/>.</summary>
    public static void Map(IEndpointRouteBuilder app, IExperimentControl control)
    {
        app.MapGet("/", (HttpContext http) => Serve(http, DashboardAssets.Index));
        app.MapGet("/dashboard", (HttpContext http) => Serve(http, DashboardAssets.Index));
        app.MapGet("/dashboard/{**path}", (string? path, HttpContext http) =>
            DashboardAssets.Find(path is null or "" ? "index.html" : path) is { } asset
                ? Serve(http, asset)
                : Error($"the dashboard has no file '{path}'", StatusCodes.Status404NotFound).ExecuteAsync(http));

        app.MapGet("/api/events", (HttpContext http) => EventStream.ServeAsync(http, control));

        app.MapGet("/api/runs/{id}/metrics", async Task<IResult> (string id, HttpContext http) =>
        {
            if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var runId) || runId <= 0)
                return Error($"run id '{id}' is not a positive integer", StatusCodes.Status400BadRequest);
            var metrics = await control.MetricsAsync(runId, http.RequestAborted);
            return metrics is null
                ? Error($"there is no run {runId} in experiment {control.Name}", StatusCodes.Status404NotFound)
                : Results.Json(metrics, ApiJson.Options);
        });

        app.MapGet("/api/log", IResult (HttpContext http) =>
        {
            var tail = DefaultTail;
            if (http.Request.Query.TryGetValue("tail", out var text) &&
                (!int.TryParse(text.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out tail) || tail > ExperimentLog.MaxTail))
                return Error($"tail must be a whole number of lines from 0 to {ExperimentLog.MaxTail}, not '{text}'", StatusCodes.Status400BadRequest);
            return Results.Json(new LogView(ExperimentLog.Tail(ExperimentLog.PathIn(control.Path), tail)), ApiJson.Options);
        });

        app.MapGet("/api/status", async Task<IResult> (HttpContext http) =>
        {
            var fitting = (await control.RunsAsync(http.RequestAborted)).Fitting;
            var (operation, started, ended, summary) = ExperimentLog.LastOperation(ExperimentLog.PathIn(control.Path));
            // A fit the log does not (yet) show is still a fit; a finished one has no current operation.
            return Results.Json(fitting
                ? new StatusView(control.Name, true, operation ?? "fit", ended is null ? started : null, null, summary, DateTime.UtcNow)
                : new StatusView(control.Name, false, null, started, ended, summary, DateTime.UtcNow), ApiJson.Options);
        });
    }

    private static Task Serve(HttpContext http, DashboardAssets.Asset asset)
    {
        var headers = http.Response.Headers;
        headers.ContentType = asset.ContentType;
        headers.CacheControl = "no-cache"; // revalidated by ETag: a newer rapidfire's page is never stale
        headers.ETag = asset.ETag;
        headers.XContentTypeOptions = "nosniff";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers["Referrer-Policy"] = "no-referrer";
        if (http.Request.Headers.IfNoneMatch == asset.ETag)
        {
            http.Response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }
        headers.ContentLength = asset.Content.Length;
        return http.Response.Body.WriteAsync(asset.Content).AsTask();
    }

    private static IResult Error(string message, int status) => Results.Json(new ErrorView(message), ApiJson.Options, statusCode: status);
}
