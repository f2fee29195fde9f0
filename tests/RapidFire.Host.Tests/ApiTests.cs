using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using static RapidFire.Host.Tests.RecordingExperimentControl;

namespace RapidFire.Host.Tests;

public sealed class ApiTests : IAsyncLifetime
{
    private readonly string folder = Path.Combine(Directory.CreateTempSubdirectory("rf-api-").FullName, "exp");
    private readonly RecordingExperimentControl control;
    private readonly HttpClient http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private ApiServer server = null!;

    public ApiTests()
    {
        Directory.CreateDirectory(folder);
        control = new RecordingExperimentControl(folder);
        control.Runs.Add(InSecondEpoch(1, ConfigWith(64, 0.001)));
        control.Runs.Add(Ended(InSecondEpoch(2, ConfigWith(128, 0.01)), RunStatus.Failed, EndReason.Failure,
            new RunFailure("ComputeForward", "shape mismatch", "train", 2, 1)));
        control.Runs.Add(Ended(new RunState(3, ConfigWith(32, 0.1)), RunStatus.Deleted, "deleted"));
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

    private async Task<(HttpStatusCode Status, JsonElement Body)> Get(string path)
    {
        using var response = await http.GetAsync(path);
        return (response.StatusCode, await Body(response));
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, string? body = null)
    {
        using var content = body is null ? null : new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync(path, content);
        return (response.StatusCode, await Body(response));
    }

    private static async Task<JsonElement> Body(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }

    [Fact]
    public async Task The_experiment_endpoint_names_the_experiment_its_folder_and_whether_it_fits()
    {
        var (status, body) = await Get("/api/experiment");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("exp", body.GetProperty("name").GetString());
        Assert.Equal(folder, body.GetProperty("path").GetString());
        Assert.True(body.GetProperty("fitting").GetBoolean());
    }

    [Fact]
    public async Task Runs_are_listed_with_progress_knobs_loss_and_the_last_epoch_metrics()
    {
        var (status, body) = await Get("/api/runs");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal([1, 2], body.EnumerateArray().Select(r => r.GetProperty("run_id").GetInt32()));
        var run = body[0];
        Assert.Equal("ongoing", run.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, run.GetProperty("ended_by").ValueKind);
        Assert.Equal("epoch 2/3 chunk 2/4", run.GetProperty("progress").GetString());
        Assert.Equal(1, run.GetProperty("epochs_done").GetInt32());
        Assert.Equal(3, run.GetProperty("max_epochs").GetInt32());
        Assert.Equal(1, run.GetProperty("chunks_done").GetInt32());
        Assert.Equal(4, run.GetProperty("chunks_per_epoch").GetInt32());
        Assert.Equal(64, run.GetProperty("knobs").GetProperty("hidden").GetInt32());
        Assert.Equal(0.001, run.GetProperty("knobs").GetProperty("optimizer.args.lr").GetDouble());
        Assert.Equal("Adam", run.GetProperty("knobs").GetProperty("optimizer.name").GetString());
        Assert.Equal(0.4, run.GetProperty("train_loss").GetDouble());
        Assert.Equal(0.675, run.GetProperty("train").GetProperty("loss").GetDouble());
        Assert.Equal(0.8, run.GetProperty("validation").GetProperty("accuracy").GetDouble());
        Assert.Equal(JsonValueKind.Null, run.GetProperty("error").ValueKind);

        var failed = body[1];
        Assert.Equal("failed", failed.GetProperty("status").GetString());
        Assert.Equal("failure", failed.GetProperty("ended_by").GetString());
        Assert.Equal("MLSpec.ComputeForward (train, epoch 2, chunk 1): shape mismatch", failed.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Deleted_runs_are_hidden_unless_all_is_true()
    {
        var (_, all) = await Get("/api/runs?all=true");
        var (_, notAll) = await Get("/api/runs?all=false");
        var (badStatus, bad) = await Get("/api/runs?all=maybe");

        Assert.Equal([1, 2, 3], all.EnumerateArray().Select(r => r.GetProperty("run_id").GetInt32()));
        Assert.Equal("deleted", all[2].GetProperty("status").GetString());
        Assert.Equal(2, notAll.GetArrayLength());
        Assert.Equal(HttpStatusCode.BadRequest, badStatus);
        Assert.Contains("'maybe'", bad.GetProperty("error").GetString());
    }

    [Fact]
    public async Task One_run_is_served_by_its_id_and_an_unknown_id_is_a_404_naming_it()
    {
        var (status, run) = await Get("/api/runs/3");
        var (unknownStatus, unknown) = await Get("/api/runs/9");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("deleted", run.GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.NotFound, unknownStatus);
        Assert.Equal("there is no run 9 in experiment exp", unknown.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("/api/runs/abc")]
    [InlineData("/api/runs/0")]
    [InlineData("/api/runs/-2")]
    [InlineData("/api/runs/99999999999")]
    public async Task A_run_id_that_is_not_a_positive_integer_is_a_400(string path)
    {
        var (status, body) = await Get(path);
        var (postStatus, _) = await Post(path + "/stop");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("is not a positive integer", body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, postStatus);
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task Stop_resume_and_delete_reach_the_experiment_and_answer_its_outcome()
    {
        var (stopStatus, stop) = await Post("/api/runs/1/stop");
        var (resumeStatus, resume) = await Post("/api/runs/2/resume", "{\"ignored\": true}");
        var (deleteStatus, delete) = await Post("/api/runs/1/delete");

        Assert.Equal([ControlOp.Stop(1), ControlOp.Resume(2), ControlOp.Delete(1)], control.Ops);
        Assert.All([stopStatus, resumeStatus, deleteStatus], s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal(1, stop.GetProperty("op_id").GetInt32());
        Assert.Equal("stop", stop.GetProperty("operation").GetString());
        Assert.Equal(1, stop.GetProperty("run_id").GetInt32());
        Assert.Equal("pending", stop.GetProperty("status").GetString());
        Assert.Equal("takes effect at run 1's next chunk boundary", stop.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, stop.GetProperty("new_run_id").ValueKind);
        Assert.Equal("resume", resume.GetProperty("operation").GetString());
        Assert.Equal("delete", delete.GetProperty("operation").GetString());
    }

    [Fact]
    public async Task A_rejected_operation_is_a_409_with_its_outcome()
    {
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Rejected, $"run {op.RunId} has failed: a failed run cannot be resumed");

        var (status, body) = await Post("/api/runs/2/resume");

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal("rejected", body.GetProperty("status").GetString());
        Assert.Equal("run 2 has failed: a failed run cannot be resumed", body.GetProperty("message").GetString());
    }

    [Fact]
    public async Task An_operation_on_an_unknown_run_is_a_404_and_never_reaches_the_experiment()
    {
        var (status, body) = await Post("/api/runs/7/clone", "{\"set\": {\"hidden\": 8}}");
        var (unknownOperation, operationBody) = await Post("/api/runs/1/pause");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("there is no run 7 in experiment exp", body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.NotFound, unknownOperation);
        Assert.Contains("'pause'", operationBody.GetProperty("error").GetString());
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task Clone_passes_each_knob_change_as_json_text_and_the_warm_flag()
    {
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Applied, "cloned", NewRunId: 4);

        var (status, body) = await Post("/api/runs/1/clone",
            """{"set": {"optimizer.args.lr": 0.01, "hidden": "64", "model_type": "cnn", "batchnorm": true, "named_metrics": ["top1_accuracy"]}, "warm": true}""");
        var (coldStatus, cold) = await Post("/api/runs/2/clone");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("clone-warm", body.GetProperty("operation").GetString());
        Assert.Equal("applied", body.GetProperty("status").GetString());
        Assert.Equal(4, body.GetProperty("new_run_id").GetInt32());
        var op = control.Ops[0];
        Assert.Equal(ControlKind.Clone, op.Kind);
        Assert.True(op.Warm);
        Assert.Equal(new Dictionary<string, string>
        {
            ["optimizer.args.lr"] = "0.01", ["hidden"] = "64", ["model_type"] = "cnn", ["batchnorm"] = "true", ["named_metrics"] = "[\"top1_accuracy\"]",
        }, op.Changes);
        Assert.Equal(HttpStatusCode.OK, coldStatus);
        Assert.Equal("clone", cold.GetProperty("operation").GetString());
        Assert.False(control.Ops[1].Warm);
        Assert.Empty(control.Ops[1].Changes!);
    }

    [Theory]
    [InlineData("{\"set\": ", "the clone body is not JSON")]
    [InlineData("[1, 2]", "must be a JSON object")]
    [InlineData("{\"set\": [\"hidden=64\"]}", "set must be an object")]
    [InlineData("{\"set\": \"hidden=64\"}", "set must be an object")]
    [InlineData("{\"set\": {\"\": 1}}", "set has an empty knob path")]
    [InlineData("{\"set\": {\"hidden\": 1, \"hidden\": 2}}", "set names knob 'hidden' twice")]
    [InlineData("{\"warm\": \"yes\"}", "warm must be true or false")]
    [InlineData("{\"warn\": true}", "unknown field 'warn'")]
    public async Task A_malformed_clone_body_is_a_400_naming_what_is_wrong(string body, string problem)
    {
        var (status, answer) = await Post("/api/runs/1/clone", body);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains(problem, answer.GetProperty("error").GetString());
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task An_operation_on_a_pending_clones_id_is_refused_saying_when_the_run_is_made()
    {
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Pending, "takes effect at run 1's next chunk boundary", NewRunId: 4);
        var (cloned, clone) = await Post("/api/runs/1/clone", "{}");
        Assert.Equal((HttpStatusCode.OK, 4), (cloned, clone.GetProperty("new_run_id").GetInt32()));

        var (status, answer) = await Post("/api/runs/4/delete");

        Assert.Equal(HttpStatusCode.Conflict, status);
        Assert.Equal("run 4 is the clone of run 1 asked for in operation 1, not made yet: it is made at run 1's next chunk boundary; ask again then",
            answer.GetProperty("error").GetString());
        Assert.Single(control.Ops); // the clone only
    }

    [Fact]
    public async Task An_operation_sent_while_the_fit_is_starting_says_so_and_when_to_ask_again()
    {
        control.Runs.Clear();

        using var response = await http.PostAsync("/api/runs/1/stop", null);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("1", response.Headers.RetryAfter?.ToString());
        Assert.Equal("experiment exp has no runs yet: its fit is starting; ask again in a moment", (await Body(response)).GetProperty("error").GetString());
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task A_clone_body_that_is_not_utf8_is_a_400_naming_the_byte()
    {
        // {"set": {"hidden": "<0xC3 0x28>"}}: a lead byte followed by one that cannot continue it
        var bytes = Encoding.ASCII.GetBytes("{\"set\": {\"hidden\": \"").Concat(new byte[] { 0xC3, 0x28 }).Concat(Encoding.ASCII.GetBytes("\"}}")).ToArray();
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

        using var response = await http.PostAsync("/api/runs/1/clone", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("the clone body is not valid UTF-8 (at byte 20)", (await Body(response)).GetProperty("error").GetString());
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413()
    {
        var huge = "{\"set\": {\"note\": \"" + new string('x', (int)ApiServer.MaxBodyBytes) + "\"}}";

        var (status, body) = await Post("/api/runs/1/clone", huge);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("over 65536 bytes", body.GetProperty("error").GetString());
        Assert.Empty(control.Ops);
    }

    [Fact]
    public async Task The_ic_log_lists_every_operation_with_its_arguments_and_outcome()
    {
        await Post("/api/runs/1/stop");
        control.Answer = (op, id) => new ControlOutcome(id, op, ControlStatus.Applied, "run 4 started", NewRunId: 4);
        await Post("/api/runs/1/clone", """{"set": {"optimizer.args.lr": "0.01"}}""");

        var (status, log) = await Get("/api/ic-log");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, log.GetArrayLength());
        var stop = log[0];
        Assert.Equal(1, stop.GetProperty("op_id").GetInt32());
        Assert.Equal(new DateTime(2025, 1, 2, 3, 4, 1, DateTimeKind.Utc), stop.GetProperty("requested_utc").GetDateTime().ToUniversalTime());
        Assert.Equal("stop", stop.GetProperty("operation").GetString());
        Assert.Equal(1, stop.GetProperty("run_id").GetInt32());
        Assert.Equal("", stop.GetProperty("arguments").GetString());
        Assert.Equal("pending", stop.GetProperty("status").GetString());
        Assert.Equal("takes effect at run 1's next chunk boundary", stop.GetProperty("outcome").GetString());
        Assert.Equal(JsonValueKind.Null, stop.GetProperty("resolved_utc").ValueKind);
        var clone = log[1];
        Assert.Equal("optimizer.args.lr=0.01", clone.GetProperty("arguments").GetString());
        Assert.Equal("applied", clone.GetProperty("status").GetString());
        Assert.Equal(4, clone.GetProperty("new_run_id").GetInt32());
        Assert.Equal(JsonValueKind.String, clone.GetProperty("resolved_utc").ValueKind);
    }

    [Fact]
    public async Task A_nan_loss_is_served_as_a_string_rather_than_failing_the_list()
    {
        control.Runs.Add(new RunState(4, ConfigWith(16, 10)).Apply(new RunStarted(2, false)).Apply(new ChunkCompleted(0, 0, double.NaN, [], null)));

        var (status, body) = await Get("/api/runs/4");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("NaN", body.GetProperty("train_loss").GetString());
    }

    [Fact]
    public async Task An_experiment_that_fails_to_answer_is_a_500_naming_the_request()
    {
        control.Failure = new InvalidOperationException("the experiment has ended");

        var (status, body) = await Get("/api/runs");

        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Equal("GET /api/runs failed: the experiment has ended", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task An_unknown_endpoint_is_a_404_listing_the_endpoints()
    {
        var (status, body) = await Get("/api/nothing");

        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("/api/runs", body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Host_json_names_the_server_while_it_runs_and_is_removed_when_it_stops()
    {
        var host = HostFile.TryRead(folder);
        Assert.NotNull(host);
        Assert.Equal(server.Url, host.Url);
        Assert.Equal(Environment.ProcessId, host.Pid);
        Assert.Equal("exp", host.Experiment);
        Assert.True(DateTime.UtcNow - host.StartedUtc < TimeSpan.FromMinutes(1));
        using (var document = JsonDocument.Parse(await File.ReadAllTextAsync(HostFile.PathIn(folder))))
            Assert.Equal(["url", "pid", "experiment", "started_utc"], document.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.Equal(server.Url, (await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(5)))?.Url);
        Assert.StartsWith("http://127.0.0.1:", server.Url);
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));

        await server.DisposeAsync();

        Assert.False(File.Exists(HostFile.PathIn(folder)));
        Assert.Null(await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(5)));
        await Assert.ThrowsAsync<HttpRequestException>(() => http.GetAsync("/api/experiment"));
    }

    [Fact]
    public async Task A_host_json_left_by_a_killed_process_is_ignored()
    {
        await server.DisposeAsync();
        var dead = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        await dead.WaitForExitAsync();
        HostFile.Write(folder, new HostFile(server.Url, dead.Id, "exp", DateTime.UtcNow));

        Assert.NotNull(HostFile.TryRead(folder));
        Assert.Null(await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_host_json_whose_url_does_not_answer_is_ignored_even_when_its_pid_is_alive()
    {
        await server.DisposeAsync();
        HostFile.Write(folder, new HostFile($"http://127.0.0.1:{FreePort()}", Environment.ProcessId, "exp", DateTime.UtcNow));

        Assert.Null(await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_host_that_is_slow_to_answer_counts_as_alive()
    {
        await server.DisposeAsync();
        // A port that accepts connections and never answers: a host too loaded to answer within the timeout.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var accepted = listener.AcceptTcpClientAsync();
        HostFile.Write(folder, new HostFile($"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}", Environment.ProcessId, "exp", DateTime.UtcNow));

        Assert.NotNull(await HostFile.FindLiveAsync(folder, TimeSpan.FromMilliseconds(300)));
        (await accepted).Dispose();
    }

    [Fact]
    public async Task A_host_json_serving_another_experiment_is_ignored()
    {
        HostFile.Write(folder, new HostFile(server.Url, Environment.ProcessId, "other", DateTime.UtcNow));

        Assert.Null(await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_corrupt_host_json_reads_as_no_host()
    {
        await File.WriteAllTextAsync(HostFile.PathIn(folder), "{ not json");

        Assert.Null(HostFile.TryRead(folder));
        Assert.Null(await HostFile.FindLiveAsync(folder, TimeSpan.FromSeconds(5)));
    }

    // Non-loopback addresses and their access token: ApiSecurityTests.

    [Fact]
    public async Task Localhost_is_served_on_the_loopback_address()
    {
        await using var local = await ApiServer.StartAsync(control, 0, "localhost");
        using var response = await http.GetAsync(new Uri(new Uri(local.Url), "/api/experiment"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("http://127.0.0.1:", local.Url);
    }

    [Fact]
    public async Task A_taken_port_is_an_io_error()
    {
        var port = new Uri(server.Url).Port;

        await Assert.ThrowsAnyAsync<IOException>(() => ApiServer.StartAsync(control, port));
    }

    [Fact]
    public async Task A_request_from_a_web_page_elsewhere_is_refused_and_one_from_the_servers_own_origin_is_served()
    {
        async Task<HttpStatusCode> Delete(string origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/runs/1/delete");
            request.Headers.Add("Origin", origin);
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Forbidden, await Delete("https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await Delete("http://localhost:1"));
        Assert.Equal(HttpStatusCode.Forbidden, await Delete("null"));
        Assert.Empty(control.Ops);
        Assert.Equal(HttpStatusCode.OK, await Delete(server.Url));
        Assert.Equal(HttpStatusCode.OK, await Delete(server.Url.Replace("127.0.0.1", "localhost")));
    }

    [Fact]
    public async Task A_request_naming_a_foreign_host_is_refused_against_dns_rebinding()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/runs");
        request.Headers.Host = "rebound.example";
        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("'rebound.example' is not a loopback host", (await Body(response)).GetProperty("error").GetString());
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>Captures the process's console, so it runs alone (after the parallel tests; Akka's loggers write there).</summary>
[CollectionDefinition(nameof(ConsoleCapture), DisableParallelization = true)]
public sealed class ConsoleCapture;

[Collection(nameof(ConsoleCapture))]
public sealed class ApiConsoleTests
{
    [Fact]
    public async Task Serving_writes_nothing_to_the_console()
    {
        var folder = Directory.CreateTempSubdirectory("rf-api-quiet-").FullName;
        var control = new RecordingExperimentControl(folder);
        control.Runs.Add(RecordingExperimentControl.InSecondEpoch(1, RecordingExperimentControl.ConfigWith(8, 0.1)));
        var (stdout, stderr) = (Console.Out, Console.Error);
        var captured = new StringWriter();
        Console.SetOut(captured);
        Console.SetError(captured);
        try
        {
            await using (var server = await ApiServer.StartAsync(control))
            {
                using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
                await http.GetStringAsync("/api/runs");
                await http.PostAsync("/api/runs/1/clone", new StringContent("{ bad"));
                await http.GetAsync("/api/nothing");
                control.Failure = new InvalidOperationException("down");
                await http.GetAsync("/api/runs");
            }
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
            Directory.Delete(folder, recursive: true);
        }

        Assert.Equal("", captured.ToString());
    }
}
