using System.Net;
using System.Text;
using System.Text.Json;
using RapidFire.Actors.Control;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Host.Dashboard;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using static RapidFire.Host.Tests.RecordingExperimentControl;

namespace RapidFire.Host.Tests;

/// <summary>The dashboard's endpoints (page, files, event stream, metrics, log, status) against a recording experiment.</summary>
public sealed class DashboardApiTests : IAsyncLifetime
{
    private readonly string folder = Path.Combine(Directory.CreateTempSubdirectory("rf-dashboard-").FullName, "exp");
    private readonly RecordingExperimentControl control;
    private readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private ApiServer server = null!;

    public DashboardApiTests()
    {
        Directory.CreateDirectory(folder);
        control = new RecordingExperimentControl(folder);
        control.Runs.Add(InSecondEpoch(1, ConfigWith(64, 0.001)));
        control.Runs.Add(InSecondEpoch(2, ConfigWith(128, 0.01)));
    }

    public async Task InitializeAsync()
    {
        server = await ApiServer.StartAsync(control);
        http.BaseAddress = new Uri(server.Url);
    }

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        http.Dispose();
        Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true);
    }

    private string LogFile => Path.Combine(folder, "experiment.log");

    private async Task<(HttpStatusCode Status, JsonElement Body)> GetJson(string path)
    {
        using var response = await http.GetAsync(path);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, document.RootElement.Clone());
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/dashboard")]
    [InlineData("/dashboard/")]
    public async Task The_page_is_served_at_the_root_and_at_dashboard(string path)
    {
        using var response = await http.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("utf-8", response.Content.Headers.ContentType?.CharSet);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("data-testid=\"runs-table\"", html);
        Assert.Contains("/dashboard/vendor/uPlot.iife.min.js", html);
        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
    }

    [Theory]
    [InlineData("/dashboard/app.js", "text/javascript")]
    [InlineData("/dashboard/app.css", "text/css")]
    [InlineData("/dashboard/index.html", "text/html")]
    [InlineData("/dashboard/vendor/uPlot.iife.min.js", "text/javascript")]
    [InlineData("/dashboard/vendor/uPlot.min.css", "text/css")]
    [InlineData("/dashboard/vendor/uPlot.LICENSE", "text/plain")]
    public async Task Dashboard_files_are_served_from_the_assembly_with_their_content_types(string path, string contentType)
    {
        using var response = await http.GetAsync(path);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(contentType, response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(body.Length > 100, $"{path} is {body.Length} characters");
        Assert.Equal(response.Content.Headers.ContentLength, Encoding.UTF8.GetByteCount(body));
    }

    [Fact]
    public async Task The_vendored_chart_library_is_uplot_1_6_32_with_its_license()
    {
        var script = await http.GetStringAsync("/dashboard/vendor/uPlot.iife.min.js");
        var license = await http.GetStringAsync("/dashboard/vendor/uPlot.LICENSE");

        Assert.StartsWith("/*! https://github.com/leeoniya/uPlot (v1.6.32) */", script);
        Assert.Contains("The MIT License", license);
    }

    [Fact]
    public async Task A_file_asked_again_with_its_etag_is_not_sent_again()
    {
        using var first = await http.GetAsync("/dashboard/app.js");
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        using var again = new HttpRequestMessage(HttpMethod.Get, "/dashboard/app.js");
        again.Headers.IfNoneMatch.Add(etag);

        using var response = await http.SendAsync(again);

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
    }

    [Theory]
    [InlineData("/dashboard/nope.js")]
    [InlineData("/dashboard/vendor/")]
    [InlineData("/dashboard/App.js")]
    [InlineData("/dashboard/DashboardEndpoints.cs")]
    public async Task An_unknown_dashboard_file_is_404(string path)
    {
        var (status, body) = await GetJson(path);

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("the dashboard has no file", body.GetProperty("error").GetString());
    }

    [Fact]
    public void The_page_loads_nothing_from_elsewhere()
    {
        // Every file the page is made of: no absolute URL, so no CDN and no web font (uPlot's banner comment excepted).
        foreach (var path in DashboardAssets.Paths.Where(p => !p.EndsWith("LICENSE", StringComparison.Ordinal)))
        {
            var text = Encoding.UTF8.GetString(DashboardAssets.Find(path)!.Content)
                .Replace("/*! https://github.com/leeoniya/uPlot (v1.6.32) */", "", StringComparison.Ordinal);
            Assert.DoesNotContain("http://", text);
            Assert.DoesNotContain("https://", text);
            Assert.DoesNotContain("//cdn", text);
            Assert.DoesNotContain("@import", text);
        }
        Assert.Contains("index.html", DashboardAssets.Paths);
        Assert.Contains("vendor/uPlot.iife.min.js", DashboardAssets.Paths);
    }

    [Fact]
    public async Task A_runs_metrics_are_every_minibatch_and_epoch_in_snake_case_with_nan_kept()
    {
        control.Metrics[1] = new RunMetrics(1,
            [new MinibatchPoint("train", 1, 1, 1, new Dictionary<string, double> { ["loss"] = 2.3, ["top1_accuracy"] = 0.1 }),
             new MinibatchPoint("train", 1, 1, 2, new Dictionary<string, double> { ["loss"] = double.NaN })],
            [new EpochPoint("validation", 1, new Dictionary<string, double> { ["loss"] = 0.6, ["top1_accuracy"] = 0.8 })]);

        var (status, body) = await GetJson("/api/runs/1/metrics");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body.GetProperty("run_id").GetInt32());
        var first = body.GetProperty("minibatches")[0];
        Assert.Equal(("train", 1, 1, 1), (first.GetProperty("mode").GetString(), first.GetProperty("epoch").GetInt32(),
            first.GetProperty("chunk").GetInt32(), first.GetProperty("step").GetInt32()));
        Assert.Equal(2.3, first.GetProperty("values").GetProperty("loss").GetDouble());
        Assert.Equal(0.1, first.GetProperty("values").GetProperty("top1_accuracy").GetDouble());
        Assert.Equal("NaN", body.GetProperty("minibatches")[1].GetProperty("values").GetProperty("loss").GetString());
        var epoch = body.GetProperty("epochs")[0];
        Assert.Equal(("validation", 1, 0.8), (epoch.GetProperty("mode").GetString(), epoch.GetProperty("epoch").GetInt32(),
            epoch.GetProperty("values").GetProperty("top1_accuracy").GetDouble()));
    }

    [Fact]
    public async Task A_run_without_metrics_yet_has_empty_lists_an_unknown_run_is_404_and_a_bad_id_400()
    {
        var (status, body) = await GetJson("/api/runs/2/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(0, body.GetProperty("minibatches").GetArrayLength());
        Assert.Equal(0, body.GetProperty("epochs").GetArrayLength());

        var (unknown, error) = await GetJson("/api/runs/9/metrics");
        Assert.Equal(HttpStatusCode.NotFound, unknown);
        Assert.Equal("there is no run 9 in experiment exp", error.GetProperty("error").GetString());

        Assert.Equal(HttpStatusCode.BadRequest, (await GetJson("/api/runs/x/metrics")).Status);
    }

    [Fact]
    public async Task The_log_endpoint_gives_the_last_lines_of_the_experiment_log()
    {
        Assert.Empty((await GetJson("/api/log")).Body.GetProperty("lines").EnumerateArray());
        File.WriteAllText(LogFile, string.Concat(Enumerable.Range(1, 300).Select(i => $"2025-01-02T03:04:05.000Z line {i}\n")) + "2025-01-02T03:04:06.000Z half");

        var (status, tail) = await GetJson("/api/log?tail=3");
        var (_, byDefault) = await GetJson("/api/log");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["2025-01-02T03:04:05.000Z line 298", "2025-01-02T03:04:05.000Z line 299", "2025-01-02T03:04:05.000Z line 300"],
            tail.GetProperty("lines").EnumerateArray().Select(l => l.GetString()));
        Assert.Equal(DashboardEndpoints.DefaultTail, byDefault.GetProperty("lines").GetArrayLength());
        Assert.Equal(HttpStatusCode.BadRequest, (await GetJson("/api/log?tail=many")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await GetJson("/api/log?tail=-1")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await GetJson($"/api/log?tail={ExperimentLog.MaxTail + 1}")).Status);
    }

    [Fact]
    public void A_log_tail_reads_back_across_blocks_and_keeps_whole_lines()
    {
        // Lines of 1,000 characters: the 70 last lines span two 64 KiB blocks read backwards.
        File.WriteAllLines(LogFile, Enumerable.Range(1, 200).Select(i => $"{i:D4} {new string('x', 995)}"));

        var lines = ExperimentLog.Tail(LogFile, 70);

        Assert.Equal(Enumerable.Range(131, 70).Select(i => $"{i:D4} {new string('x', 995)}"), lines);
        Assert.Equal(200, ExperimentLog.Tail(LogFile, 500).Count);
        Assert.Empty(ExperimentLog.Tail(LogFile, 0));
    }

    [Fact]
    public async Task The_status_names_the_current_operation_and_when_it_started()
    {
        File.WriteAllText(LogFile, """
            2025-01-02T03:00:00.000Z experiment exp created
            2025-01-02T03:00:01.250Z fit of 2 runs started (MnistSpec, devices cpu, 4 chunks per epoch)
            2025-01-02T03:00:09.000Z run 1 Stopped (user)

            """);

        var (_, fitting) = await GetJson("/api/status");

        Assert.True(fitting.GetProperty("fitting").GetBoolean());
        Assert.Equal("fit", fitting.GetProperty("operation").GetString());
        Assert.Equal(new DateTime(2025, 1, 2, 3, 0, 1, 250, DateTimeKind.Utc), fitting.GetProperty("started_utc").GetDateTime().ToUniversalTime());
        Assert.True(fitting.GetProperty("server_time_utc").GetDateTime() > new DateTime(2025, 1, 1));

        File.AppendAllText(LogFile, "2025-01-02T03:01:01.250Z fit ended: run 1 Stopped (user), run 2 Completed (epochs)\n");
        control.Fitting = false;
        var (_, ended) = await GetJson("/api/status");

        Assert.False(ended.GetProperty("fitting").GetBoolean());
        Assert.Equal(JsonValueKind.Null, ended.GetProperty("operation").ValueKind);
        Assert.Equal(new DateTime(2025, 1, 2, 3, 1, 1, 250, DateTimeKind.Utc), ended.GetProperty("ended_utc").GetDateTime().ToUniversalTime());
        Assert.StartsWith("fit ended: run 1 Stopped", ended.GetProperty("summary").GetString());
    }

    [Fact]
    public async Task A_resumed_fit_is_the_operation_resume()
    {
        File.WriteAllText(LogFile, "2025-01-02T03:00:00.000Z fit of 2 runs started (x)\n2025-01-02T03:00:05.000Z fit 1 resumed\n");

        var (_, status) = await GetJson("/api/status");

        Assert.Equal("resume", status.GetProperty("operation").GetString());
        Assert.Equal(new DateTime(2025, 1, 2, 3, 0, 5, DateTimeKind.Utc), status.GetProperty("started_utc").GetDateTime().ToUniversalTime());
    }

    /// <summary>An open event stream, read event by event.</summary>
    private sealed class EventReader(HttpResponseMessage response, StreamReader reader) : IDisposable
    {
        public HttpResponseMessage Response { get; } = response;

        public async Task<(string Name, JsonElement Data)> NextAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            string? name = null;
            while (true)
            {
                var line = await reader.ReadLineAsync(timeout.Token) ?? throw new EndOfStreamException("the event stream ended");
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line["event: ".Length..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    using var document = JsonDocument.Parse(line["data: ".Length..]);
                    return (name ?? "message", document.RootElement.Clone());
                }
            }
        }

        public void Dispose()
        {
            reader.Dispose();
            Response.Dispose();
        }
    }

    private async Task<EventReader> OpenEvents()
    {
        var response = await http.GetAsync("/api/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new EventReader(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
        var (name, hello) = await events.NextAsync();
        Assert.Equal(("hello", "exp", true), (name, hello.GetProperty("name").GetString(), hello.GetProperty("fitting").GetBoolean()));
        return events;
    }

    [Fact]
    public async Task The_event_stream_delivers_what_the_experiment_raises_as_small_json_events()
    {
        using var events = await OpenEvents();

        control.Raise(new RunChanged(Ended(InSecondEpoch(1, ConfigWith(64, 0.001)), RunStatus.Stopped, EndReason.User)));
        control.Raise(new TaskDone(null!)); // not for the stream
        control.Raise(new MinibatchDone(new MinibatchRecord(2, Mode.Train, 1, 2, 9, 32, 0.25,
            new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(24, 32) }, MetricValues.Empty)));
        control.Raise(new EpochDone(new MetricsProtocol.EpochRecorded(2, Mode.Validation, 0, new Dictionary<string, double> { ["loss"] = double.PositiveInfinity })));
        control.Raise(new ControlLogged(new ControlRecord(4, DateTime.UtcNow, ControlOp.Stop(1), ControlStatus.Applied, "run 1 stopped", null, DateTime.UtcNow)));
        control.Raise(new Warning("checkpoint e0001-c0002.ckpt of run 2 is corrupt"));
        control.Raise(new RunPrunedBy(2, "sha rung 1"));

        var (name, run) = await events.NextAsync();
        Assert.Equal(("run", 1, "stopped", "user"), (name, run.GetProperty("run_id").GetInt32(), run.GetProperty("status").GetString(), run.GetProperty("ended_by").GetString()));
        Assert.Equal(0.001, run.GetProperty("knobs").GetProperty("optimizer.args.lr").GetDouble());
        (name, var minibatch) = await events.NextAsync();
        Assert.Equal(("minibatch", 2, "train", 2, 3, 10), (name, minibatch.GetProperty("run_id").GetInt32(), minibatch.GetProperty("mode").GetString(),
            minibatch.GetProperty("epoch").GetInt32(), minibatch.GetProperty("chunk").GetInt32(), minibatch.GetProperty("step").GetInt32()));
        Assert.Equal(0.25, minibatch.GetProperty("values").GetProperty("loss").GetDouble());
        Assert.Equal(0.75, minibatch.GetProperty("values").GetProperty("top1_accuracy").GetDouble());
        (name, var epoch) = await events.NextAsync();
        Assert.Equal(("epoch", 2, "validation", 1, "Infinity"), (name, epoch.GetProperty("run_id").GetInt32(), epoch.GetProperty("mode").GetString(),
            epoch.GetProperty("epoch").GetInt32(), epoch.GetProperty("values").GetProperty("loss").GetString()));
        (name, var ic) = await events.NextAsync();
        Assert.Equal(("ic", 4, "stop", "applied"), (name, ic.GetProperty("op_id").GetInt32(), ic.GetProperty("operation").GetString(), ic.GetProperty("status").GetString()));
        (name, var warning) = await events.NextAsync();
        Assert.Equal(("warning", "checkpoint e0001-c0002.ckpt of run 2 is corrupt"), (name, warning.GetProperty("message").GetString()));
        (name, var pruned) = await events.NextAsync();
        Assert.Equal(("pruned", 2, "sha rung 1"), (name, pruned.GetProperty("run_id").GetInt32(), pruned.GetProperty("reason").GetString()));
    }

    [Fact]
    public async Task The_event_stream_follows_the_experiment_log()
    {
        File.WriteAllText(LogFile, "2025-01-02T03:00:00.000Z before the stream\n");
        using var events = await OpenEvents();

        File.AppendAllText(LogFile, "2025-01-02T03:00:01.000Z run 1 Stopped (user)\n2025-01-02T03:00:02.000Z half a li");
        var (name, log) = await events.NextAsync();
        Assert.Equal(("log", "2025-01-02T03:00:01.000Z run 1 Stopped (user)"), (name, log.GetProperty("line").GetString()));

        File.AppendAllText(LogFile, "ne\n");
        (name, log) = await events.NextAsync();
        Assert.Equal(("log", "2025-01-02T03:00:02.000Z half a line"), (name, log.GetProperty("line").GetString()));
    }

    [Fact]
    public async Task A_client_that_disconnects_is_unsubscribed()
    {
        Assert.Equal(0, control.Subscribers);
        var events = await OpenEvents();
        using (var second = await OpenEvents())
            Assert.Equal(2, control.Subscribers);

        await Until(() => control.Subscribers == 1, "the closed stream stayed subscribed");
        events.Dispose();
        await Until(() => control.Subscribers == 0, "the closed stream stayed subscribed");
    }

    [Fact]
    public async Task Open_streams_end_when_the_server_stops()
    {
        using var events = await OpenEvents();
        var stopping = server.DisposeAsync().AsTask();

        await Assert.ThrowsAsync<EndOfStreamException>(async () => { while (true) await events.NextAsync(); });
        await stopping.WaitAsync(TimeSpan.FromSeconds(4)); // well within the server's 5 s grace: the stream did not hold it
        Assert.Equal(0, control.Subscribers);
    }

    [Fact]
    public void A_full_client_buffer_drops_its_oldest_events_and_counts_them()
    {
        var buffer = new DropOldestBuffer<int>(3);
        foreach (var i in Enumerable.Range(1, 5)) buffer.Add(i);

        var kept = new List<int>();
        while (buffer.TryTake(out var item)) kept.Add(item);

        Assert.Equal([3, 4, 5], kept);
        Assert.Equal(2, buffer.TakeDropped());
        Assert.Equal(0, buffer.TakeDropped());
    }

    private static async Task Until(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(20);
        }
    }
}
