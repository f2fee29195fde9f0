using System.Collections.Concurrent;
using RapidFire.Actors.Control;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Host.Export;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;

namespace RapidFire.Host.Tests.Export;

/// <summary>
/// One journaled batch of a run's events as the runtime publishes it: the chunk it trained, if any (its minibatch
/// records), then the run's state after it.
/// </summary>
internal sealed record ScriptedStep(RunState State, ChunkRecorded? Chunk = null)
{
    /// <summary>The events the exporters are given for this step.</summary>
    public IEnumerable<ExperimentEvent> Events(bool recovered = false) =>
        Chunk is null ? [new RunChanged(State, recovered)] : [Chunk, new RunChanged(State, recovered)];

    /// <summary>What <paramref name="tracker"/> makes of this step: the chunk's metrics, then the state's.</summary>
    public MlflowRunUpdate ObservedBy(MlflowRunTracker tracker, long timestamp)
    {
        var metrics = Chunk is null ? [] : tracker.Observe(Chunk, timestamp).Metrics;
        var update = tracker.Observe(State, timestamp);
        return update with { Metrics = [.. metrics, .. update.Metrics] };
    }
}

/// <summary>The steps a run goes through, as the runtime publishes them (one per journaled batch of events).</summary>
internal static class ScriptedRun
{
    public static MinibatchRecord Minibatch(int runId, int epoch, int chunk, int step) =>
        new(runId, Mode.Train, epoch, chunk, step, 32, 1.0 / (1 + epoch * 100 + step),
            new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(step % 32, 32) }, MetricValues.Empty);

    public static Config Knobs(double lr, params (string Key, object? Value)[] more) => new([
        new("model_type", "mlp"), new("epochs", 2L), new("batch_size", 32L),
        new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = lr } }),
        new("storage", new Dictionary<string, object?> { ["api_key"] = "sk-live-123", ["bucket"] = "runs" }),
        .. more.Select(kv => new KeyValuePair<string, object?>(kv.Key, kv.Value))]);

    /// <summary>
    /// Every state of a run training <paramref name="epochs"/> epochs of <paramref name="chunks"/> chunks of
    /// <paramref name="perChunk"/> minibatches with validation, ending as <paramref name="end"/> after
    /// <paramref name="endAfterEpochs"/> epochs (default: all).
    /// </summary>
    public static List<ScriptedStep> States(int runId, Config config, int epochs, int chunks, int perChunk, RunStatus end = RunStatus.Completed,
        int? endAfterEpochs = null)
    {
        var state = new RunState(runId, config);
        var states = new List<ScriptedStep> { new(state) };
        state = state with { Status = RunStatus.Ongoing, ChunksPerEpoch = chunks, HasValidation = true };
        states.Add(new(state));
        for (var epoch = 0; epoch < (endAfterEpochs ?? epochs); epoch++)
        {
            for (var chunk = 0; chunk < chunks; chunk++)
            {
                var records = Enumerable.Range(chunk * perChunk, perChunk).Select(step => Minibatch(runId, epoch, chunk, step)).ToList();
                state = state with { ChunksDone = chunk + 1 };
                states.Add(new(state, new ChunkRecorded(runId, epoch, chunk, records)));
            }
            state = state with { TrainClosed = true, TrainHistory = [.. state.TrainHistory, new Dictionary<string, double> { ["loss"] = 0.5 / (epoch + 1), ["top1_accuracy"] = 0.5 + epoch / 10.0 }] };
            states.Add(new(state));
            state = state with { ValidationDone = true };
            states.Add(new(state));
            state = state with
            {
                ValidationHistory = [.. state.ValidationHistory, new Dictionary<string, double> { ["loss"] = 0.6 / (epoch + 1), ["top1_accuracy"] = 0.4 + epoch / 10.0 }],
                EpochsDone = epoch + 1, ChunksDone = 0, TrainClosed = false, ValidationDone = false,
            };
            states.Add(new(state));
        }
        states.Add(new(state with
        {
            Status = end,
            EndedBy = end switch { RunStatus.Completed => EndReason.Epochs, RunStatus.Failed => EndReason.Failure, _ => EndReason.User },
            Failure = end == RunStatus.Failed ? new RunFailure("ComputeForward", "shape mismatch") : null,
        }));
        return states;
    }
}

public sealed class MlflowExporterTests : IAsyncLifetime
{
    private MlflowSchemaServer server = null!;
    private readonly string folder = Directory.CreateTempSubdirectory("rf-mlflow-").FullName;
    private readonly ConcurrentQueue<string> log = new();

    public async Task InitializeAsync() => server = await MlflowSchemaServer.StartAsync();

    public async Task DisposeAsync()
    {
        await server.DisposeAsync();
        Directory.Delete(folder, recursive: true);
    }

    private MlflowOptions Options => new(new Uri(server.Url))
    {
        SendInterval = TimeSpan.FromMilliseconds(20),
        RetryDelay = TimeSpan.FromMilliseconds(5),
        FlushTimeout = TimeSpan.FromSeconds(20),
    };

    private MlflowExporter Exporter(MlflowOptions? options = null, string name = "exp") =>
        new(options ?? Options, name, log.Enqueue, Path.Combine(folder, MlflowExporter.StateFileName));

    private static void Feed(MlflowExporter exporter, IEnumerable<ScriptedStep> states, bool recovered = false)
    {
        foreach (var e in states.SelectMany(s => s.Events(recovered))) exporter.Observe(e);
    }

    [Fact]
    public async Task Each_run_becomes_an_MLflow_run_with_its_knobs_as_params_its_metrics_by_step_and_its_final_status()
    {
        var ends = new[] { RunStatus.Completed, RunStatus.Failed, RunStatus.Stopped, RunStatus.Deleted };
        await using (var exporter = Exporter())
        {
            for (var i = 0; i < ends.Length; i++)
                Feed(exporter, ScriptedRun.States(i + 1, ScriptedRun.Knobs(0.001 * (i + 1)), epochs: 2, chunks: 2, perChunk: 3, end: ends[i]));
            await exporter.FlushAsync();
            Assert.Equal("1", exporter.ExperimentId);
        }

        Assert.Empty(server.Rejected);
        Assert.Equal(new Dictionary<string, string> { ["1"] = "exp" }, server.Experiments);
        Assert.Equal(["run-1", "run-2", "run-3", "run-4"], server.Runs.Select(r => r.RunName).Order());
        var expected = new[] { ("FINISHED", "Completed"), ("FAILED", "Failed"), ("KILLED", "Stopped"), ("KILLED", "Deleted") };
        for (var i = 0; i < ends.Length; i++)
        {
            var run = server.RunNamed($"run-{i + 1}");
            Assert.Equal($"{i + 1}", run.Tags["rapidfire.run_id"]);
            Assert.Equal(expected[i], (run.Status, run.Tags["rapidfire.status"]));
            Assert.NotNull(run.EndTime);
            Assert.True(run.EndTime >= run.StartTime);
            Assert.Equal("***", run.Params["storage.api_key"]);
            Assert.Equal("runs", run.Params["storage.bucket"]);
            Assert.Equal(((0.001 * (i + 1))).ToString("R", System.Globalization.CultureInfo.InvariantCulture), run.Params["optimizer.args.lr"]);
            Assert.Equal(["model_type", "epochs", "batch_size", "optimizer.name", "optimizer.args.lr", "storage.api_key", "storage.bucket"], run.Params.Keys);

            // 2 epochs of 6 minibatches: steps 1..12 in order, each value the minibatch's
            Assert.Equal(Enumerable.Range(1, 12).Select(s => (long)s), run.MetricsOf("minibatch_loss").Select(m => m.Step));
            Assert.Equal(1.0 / (1 + 100 + 2), run.MetricsOf("minibatch_loss").Single(m => m.Step == 9).Value); // epoch 2, 3rd minibatch
            Assert.Equal(12, run.MetricsOf("minibatch_top1_accuracy").Count());
            Assert.Equal([(1L, 0.5), (2L, 0.25)], run.MetricsOf("train_loss").Select(m => (m.Step, m.Value)));
            Assert.Equal([(1L, 0.4), (2L, 0.5)], run.MetricsOf("val_top1_accuracy").Select(m => (m.Step, m.Value)));
        }
        Assert.Contains("shape mismatch", server.RunNamed("run-2").Tags["rapidfire.error"]);
        Assert.False(server.RunNamed("run-1").Tags.ContainsKey("rapidfire.error"));
        Assert.DoesNotContain(server.Exchanges, e => e.Body?.Contains("sk-live-123") == true);
        Assert.DoesNotContain(log, l => l.StartsWith("warning", StringComparison.Ordinal));
        Assert.Contains(log, l => l.StartsWith("mlflow: exporting to http://127.0.0.1", StringComparison.Ordinal));
    }

    [Fact]
    public void A_state_seen_twice_or_gone_back_to_a_checkpoint_logs_nothing_twice()
    {
        var states = ScriptedRun.States(1, ScriptedRun.Knobs(0.01), epochs: 2, chunks: 2, perChunk: 3);
        var tracker = new MlflowRunTracker(1);
        var steps = new List<long>();
        var epochs = new List<long>();
        foreach (var state in states.Take(8).Concat(states.Skip(4).Take(4)).Concat(states.Skip(8)))
        {
            var update = state.ObservedBy(tracker, 1000);
            steps.AddRange(update.Metrics.Where(m => m.Key == "minibatch_loss").Select(m => m.Step));
            epochs.AddRange(update.Metrics.Where(m => m.Key == "val_loss").Select(m => m.Step));
        }
        Assert.Equal(Enumerable.Range(1, 12).Select(s => (long)s), steps);
        Assert.Equal([1L, 2L], epochs);
        Assert.Equal(new MlflowRunProgress(12, 2, 2, 6, "FINISHED"), tracker.Progress);
    }

    [Fact]
    public void A_run_first_seen_in_a_later_epoch_holds_its_minibatches_until_it_knows_an_epochs_length()
    {
        var states = ScriptedRun.States(1, ScriptedRun.Knobs(0.01), epochs: 3, chunks: 2, perChunk: 3);
        var tracker = new MlflowRunTracker(1);
        var midEpoch2 = states.Single(s => s.State.EpochsDone == 1 && s.State.ChunksDone == 1);
        Assert.DoesNotContain(midEpoch2.ObservedBy(tracker, 1).Metrics, m => m.Key.StartsWith("minibatch_", StringComparison.Ordinal));
        var endOfEpoch2 = states.Single(s => s.State.EpochsDone == 1 && s.State.ChunksDone == 2 && !s.State.TrainClosed);
        Assert.Equal([7L, 8, 9, 10, 11, 12], endOfEpoch2.ObservedBy(tracker, 2).Metrics.Where(m => m.Key == "minibatch_loss").Select(m => m.Step));
    }

    [Fact]
    public async Task Big_runs_are_sent_within_MLflows_batch_limits()
    {
        var knobs = Enumerable.Range(0, 150).Select(i => ($"knob_{i:000}", (object?)(long)i))
            .Append(("notes", new string('x', 7000))).ToArray();
        await using (var exporter = Exporter())
        {
            Feed(exporter, ScriptedRun.States(1, ScriptedRun.Knobs(0.1, knobs), epochs: 1, chunks: 1, perChunk: 1200));
            await exporter.FlushAsync();
        }

        Assert.Empty(server.Rejected);
        var run = server.Runs.Single();
        Assert.Equal(7 + 151, run.Params.Count);
        Assert.Equal(6000, run.Params["notes"].Length);
        Assert.Equal(Enumerable.Range(1, 1200).Select(s => (long)s), run.MetricsOf("minibatch_loss").Select(m => m.Step));
        Assert.Equal(1200, run.MetricsOf("minibatch_top1_accuracy").Count());
        Assert.Equal("FINISHED", run.Status);
        Assert.True(server.Exchanges.Count(e => e.Path.EndsWith("log-batch", StringComparison.Ordinal)) >= 2 + 3); // params in 2, 2,400 metrics in 3 or more
    }

    [Fact]
    public async Task A_clone_is_tagged_with_its_parent_whichever_event_comes_first()
    {
        static ControlLogged Clone(int parent, int child, bool warm) => new(new ControlRecord(child, DateTime.UtcNow,
            ControlOp.CloneOf(parent, new Dictionary<string, string> { ["optimizer.args.lr"] = "0.1" }, warm), ControlStatus.Applied, "created", child, DateTime.UtcNow));

        await using (var exporter = Exporter())
        {
            Feed(exporter, ScriptedRun.States(1, ScriptedRun.Knobs(0.01), 1, 1, 2));
            exporter.Observe(Clone(1, 2, warm: true));               // the clone's record first
            Feed(exporter, ScriptedRun.States(2, ScriptedRun.Knobs(0.1), 1, 1, 2));
            Feed(exporter, ScriptedRun.States(3, ScriptedRun.Knobs(0.2), 1, 1, 2).Take(2));
            exporter.Observe(Clone(1, 3, warm: false));              // the clone's run first
            Feed(exporter, ScriptedRun.States(3, ScriptedRun.Knobs(0.2), 1, 1, 2).Skip(2));
            await exporter.FlushAsync();
        }

        Assert.Empty(server.Rejected);
        Assert.False(server.RunNamed("run-1").Tags.ContainsKey("rapidfire.cloned_from"));
        Assert.Equal(("1", "true"), (server.RunNamed("run-2").Tags["rapidfire.cloned_from"], server.RunNamed("run-2").Tags["rapidfire.warm_start"]));
        Assert.Equal(("1", "false"), (server.RunNamed("run-3").Tags["rapidfire.cloned_from"], server.RunNamed("run-3").Tags["rapidfire.warm_start"]));
    }

    [Fact]
    public async Task A_resumed_fit_logs_into_the_same_MLflow_runs_and_nothing_twice()
    {
        var states = ScriptedRun.States(1, ScriptedRun.Knobs(0.01), epochs: 2, chunks: 2, perChunk: 3);
        var crash = states.FindIndex(s => s.State.EpochsDone == 1 && s.State.ChunksDone == 1);
        await using (var first = Exporter())
        {
            Feed(first, states.Take(crash + 1));
            await first.FlushAsync();
        }
        Assert.True(File.Exists(Path.Combine(folder, MlflowExporter.StateFileName)));

        // The resumed fit: the run recovered where it was, a chunk lost in the crash trained again, then the rest.
        await using (var second = Exporter())
        {
            second.Observe(new RunChanged(states[crash - 1].State, Recovered: true));
            Feed(second, states.Skip(crash));
            await second.FlushAsync();
        }

        Assert.Empty(server.Rejected);
        var run = server.Runs.Single();
        Assert.Single(server.Exchanges, e => e.Path.EndsWith("runs/create", StringComparison.Ordinal));
        Assert.Equal(Enumerable.Range(1, 12).Select(s => (long)s), run.MetricsOf("minibatch_loss").Select(m => m.Step));
        Assert.Equal([1L, 2L], run.MetricsOf("val_loss").Select(m => m.Step));
        Assert.Equal("FINISHED", run.Status);
    }

    [Fact]
    public async Task A_stopped_run_that_is_resumed_is_running_again_then_finished()
    {
        var states = ScriptedRun.States(1, ScriptedRun.Knobs(0.01), epochs: 2, chunks: 1, perChunk: 2);
        var stopped = new ScriptedStep(states[3].State with { Status = RunStatus.Stopped, EndedBy = EndReason.User });
        await using (var exporter = Exporter())
        {
            Feed(exporter, states.Take(4).Append(stopped).Concat(states.Skip(4)));
            await exporter.FlushAsync();
        }
        Assert.Empty(server.Rejected);
        Assert.Equal(["KILLED", "RUNNING", "FINISHED"], server.Runs.Single().StatusHistory.Select(s => s.Status));
        Assert.Null(server.Runs.Single().StatusHistory[1].EndTime);
    }

    [Fact]
    public async Task Requests_that_fail_for_a_while_are_retried_with_backoff()
    {
        server.FailNext(2);
        await using (var exporter = Exporter())
        {
            Feed(exporter, ScriptedRun.States(1, ScriptedRun.Knobs(0.01), 1, 2, 3));
            await exporter.FlushAsync();
        }
        Assert.Equal(2, server.Exchanges.Count(e => e.Status == 503));
        Assert.Empty(server.Rejected);
        Assert.Equal(6, server.Runs.Single().MetricsOf("minibatch_loss").Count());
        Assert.DoesNotContain(log, l => l.StartsWith("warning", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_server_that_keeps_failing_gives_warnings_then_the_exporter_stops_trying()
    {
        server.FailEverythingWith = 500;
        var options = Options with { Retries = 1, GiveUpAfter = 3 };
        await using (var exporter = Exporter(options))
        {
            for (var run = 1; run <= 3; run++) Feed(exporter, ScriptedRun.States(run, ScriptedRun.Knobs(0.01), 1, 2, 3));
            var flush = exporter.FlushAsync();
            Assert.Same(flush, await Task.WhenAny(flush, Task.Delay(TimeSpan.FromSeconds(20))));
            // The experiment's set-up is tried again with each batch until enough attempts failed in a row.
            for (var waited = 0; !log.Any(l => l.Contains("export stopped")) && waited < 200; waited++) await Task.Delay(50);
            Feed(exporter, ScriptedRun.States(4, ScriptedRun.Knobs(0.01), 1, 2, 3)); // ignored once stopped
            await exporter.FlushAsync();
        }
        var warnings = log.Where(l => l.StartsWith("warning: mlflow: ", StringComparison.Ordinal)).ToList();
        Assert.Contains(warnings, w => w.Contains("setting up the MLflow experiment failed: experiments/get-by-name: HTTP 500 INTERNAL_ERROR: the tracking server is down (after 2 attempts)"));
        Assert.Contains(warnings, w => w.Contains("export stopped after 3 failed requests in a row"));
        Assert.Equal(3 * 2, server.Exchanges.Count); // 3 requests, each tried twice, then nothing
    }

    [Fact]
    public async Task An_address_that_is_no_MLflow_server_is_a_warning()
    {
        server.AnswerEverythingWith = (200, "<html>sign in</html>");
        await using (var exporter = Exporter(Options with { GiveUpAfter = 2 }))
        {
            Feed(exporter, ScriptedRun.States(1, ScriptedRun.Knobs(0.01), 1, 1, 2));
            await exporter.FlushAsync();
            for (var waited = 0; !log.Any(l => l.Contains("export stopped")) && waited < 200; waited++) await Task.Delay(50);
        }
        Assert.Contains("warning: mlflow: setting up the MLflow experiment failed: experiments/get-by-name: the answer has no experiment.experiment_id; tried again with the next batch", log);
        Assert.Contains(log, l => l.Contains("export stopped after 2 failed requests in a row"));
    }

    [Fact]
    public async Task Credentials_are_sent_in_the_authorization_header_and_never_logged()
    {
        server.RequiredAuthorization = "Bearer tok-s3cr3t";
        var env = new Dictionary<string, string?> { [MlflowOptions.UriVariable] = server.Url, [MlflowOptions.TokenVariable] = "tok-s3cr3t" };
        var options = MlflowOptions.Resolve(null, env.GetValueOrDefault)! with { SendInterval = TimeSpan.FromMilliseconds(20) };
        await using (var exporter = Exporter(options))
        {
            Feed(exporter, ScriptedRun.States(1, ScriptedRun.Knobs(0.01), 1, 1, 2));
            await exporter.FlushAsync();
        }
        Assert.All(server.Exchanges, e => Assert.Equal("Bearer tok-s3cr3t", e.Authorization));
        Assert.All(server.Exchanges, e => Assert.True(e.Status == 200 || e.Path.EndsWith("get-by-name", StringComparison.Ordinal), $"{e.Path}: {e.Status}"));
        Assert.DoesNotContain(log, l => l.Contains("s3cr3t"));
        Assert.DoesNotContain("s3cr3t", options.ToString());

        server.RequiredAuthorization = "Basic " + Convert.ToBase64String("ada:pa55"u8.ToArray());
        env[MlflowOptions.UsernameVariable] = "ada";
        env[MlflowOptions.PasswordVariable] = "pa55";
        await using (var exporter = Exporter(MlflowOptions.Resolve(null, env.GetValueOrDefault)! with { SendInterval = TimeSpan.FromMilliseconds(20) }, "exp2"))
        {
            Feed(exporter, ScriptedRun.States(1, ScriptedRun.Knobs(0.01), 1, 1, 2));
            await exporter.FlushAsync();
        }
        Assert.DoesNotContain(server.Exchanges, e => e.Status is 400 or 401);
        Assert.Equal(2, server.Runs.Count);
        Assert.DoesNotContain(log, l => l.Contains("pa55"));
    }

    [Fact]
    public void The_tracking_uri_comes_from_the_option_else_the_environment()
    {
        var env = new Dictionary<string, string?> { [MlflowOptions.UriVariable] = "http://env-host:5000" };
        Assert.Null(MlflowOptions.Resolve(null, _ => null));
        Assert.Equal("http://env-host:5000", MlflowOptions.Resolve(null, env.GetValueOrDefault)!.DisplayUri);
        Assert.Equal("https://cli-host/mlflow", MlflowOptions.Resolve("https://cli-host/mlflow/", env.GetValueOrDefault)!.DisplayUri);
        Assert.Null(MlflowOptions.Resolve(null, env.GetValueOrDefault)!.Token);

        var cli = Assert.Throws<ArgumentException>(() => MlflowOptions.Resolve("file:./mlruns", env.GetValueOrDefault));
        Assert.StartsWith("--mlflow: 'file:./mlruns' is not an http(s) URI", cli.Message);
        var fromEnv = Assert.Throws<ArgumentException>(() => MlflowOptions.Resolve(null, _ => "databricks"));
        Assert.StartsWith("MLFLOW_TRACKING_URI: 'databricks'", fromEnv.Message);
    }
}

/// <summary>The stand-in server refuses what MLflow refuses, so "no request was refused" means something.</summary>
public sealed class MlflowSchemaServerTests : IAsyncLifetime
{
    private MlflowSchemaServer server = null!;
    private readonly HttpClient http = new();

    public async Task InitializeAsync() => server = await MlflowSchemaServer.StartAsync();

    public async Task DisposeAsync()
    {
        http.Dispose();
        await server.DisposeAsync();
    }

    private async Task<(int Status, string Body)> Post(string endpoint, string json)
    {
        using var response = await http.PostAsync($"{server.Url}/api/2.0/mlflow/{endpoint}", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task It_answers_violations_of_the_REST_schema_with_MLflows_400()
    {
        var (_, created) = await Post("experiments/create", """{"name": "e"}""");
        Assert.Equal("""{"experiment_id":"1"}""", created);
        var (_, run) = await Post("runs/create", """{"experiment_id": "1", "run_name": "r", "start_time": 5, "tags": [{"key": "a", "value": "b"}]}""");
        var runId = System.Text.Json.JsonDocument.Parse(run).RootElement.GetProperty("run").GetProperty("info").GetProperty("run_id").GetString();
        Assert.Equal(200, (await Post("runs/log-batch", $$"""{"run_id": "{{runId}}", "metrics": [{"key": "m", "value": "NaN", "timestamp": "7", "step": 1}], "params": [{"key": "p", "value": "1"}]}""")).Status);

        string[] bad =
        [
            """{"experiment_id": 1, "run_name": "r"}""",                                                       // runs/create: experiment_id is a string
            $$"""{"run_id": "{{runId}}", "metrics": [{"key": "m", "value": 1, "timestamp": 1.5}]}""",         // timestamp is an int64
            $$"""{"run_id": "{{runId}}", "metrics": [{"key": "m", "value": 1}]}""",                            // timestamp is required
            $$"""{"run_id": "{{runId}}", "metrics": [{"key": "m", "value": "x", "timestamp": 1}]}""",         // value is a double
            $$"""{"run_id": "{{runId}}", "metric": []}""",                                                     // unknown field
            $$"""{"run_id": "{{runId}}", "params": [{"key": "p", "value": "2"}]}""",                           // a param may not change
            $$"""{"run_id": "{{runId}}", "params": [{"key": "bad key!", "value": "2"}]}""",                    // key characters
            $$"""{"run_id": "{{runId}}", "params": [{"key": "q", "value": "{{new string('v', 6001)}}"}]}""",  // value length
            $$"""{"run_id": "{{runId}}", "metrics": [{{string.Join(",", Enumerable.Repeat("""{"key": "m", "value": 1, "timestamp": 1}""", 1001))}}]}""",
            $$"""{"run_id": "{{runId}}", "status": "DONE"}""",                                                 // runs/update: status enum
        ];
        string[] endpoints = ["runs/create", .. Enumerable.Repeat("runs/log-batch", 8), "runs/update"];
        for (var i = 0; i < bad.Length; i++)
        {
            var (status, body) = await Post(endpoints[i], bad[i]);
            Assert.True(status == 400, $"request {i} ({endpoints[i]}) was answered {status}: {body}");
            Assert.Contains("\"error_code\":\"INVALID_PARAMETER_VALUE\"", body);
        }
    }
}
