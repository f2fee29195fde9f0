using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Cluster;
using RapidFire.Actors;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Cluster;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Host;
using RapidFire.Host.Configuration;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Bench;

/// <summary>
/// The issue-9 benchmark: the example's 4 configs on the full shared MNIST data, 4 chunks per epoch, trained by a fit
/// whose node has no device (<c>--devices none</c>, the coordinator) on (a) one and (b) two worker processes of the
/// built <c>rapidfire</c> CLI (<c>rapidfire worker --devices cpu</c>), alternating the sides; and the bytes that cross
/// nodes per trained chunk in (b): the messages, serialized by <see cref="RemoteSerializer"/>, and the checkpoints
/// written to and read back from the shared store.
/// </summary>
/// <remarks>
/// Each side has its own standing cluster of workers, started once before the first fit and killed after the last:
/// side (a)'s worker forms its cluster (its own address is its seed node), side (b)'s first worker forms one and the
/// second joins it. Every fit is a new experiment whose node joins the side's cluster (<c>--seed-nodes</c> a worker,
/// its own <c>--port</c>), waits until every member is up, and is timed from <see cref="Experiment.RunFitAsync"/> to
/// its end. That node is this process (an <see cref="Experiment"/> with the <c>cluster</c> profile, as
/// <c>rapidfire fit --devices none --seed-nodes ... --port ...</c> runs it), so that the benchmark sees every task's
/// device (where each run trained: its moves between nodes) and every <see cref="TaskFinished"/> as the node received it.
/// </remarks>
public sealed class ClusterBench
{
    private const int Chunks = 4;
    private const string Host = "127.0.0.1";
    private readonly string data;
    private readonly int epochs;
    private readonly string cli;
    private readonly string specPath;
    private readonly string work = Path.Combine(Path.GetTempPath(), "rapidfire-bench", $"cluster-{Guid.NewGuid():N}");
    private readonly DataHandle handle;
    private readonly ConfigGroup configs;
    private readonly int configCount;
    private readonly List<Worker> started = [];

    public ClusterBench(string repo, string data, int epochs)
    {
        this.data = data;
        this.epochs = epochs;
        cli = Path.Combine(repo, "src", "Host", "bin", "Release", "net10.0", "rapidfire.dll");
        if (!File.Exists(cli)) throw new FileNotFoundException($"build the CLI first: dotnet build {Path.Combine(repo, "src", "Host")} -c Release", cli);
        specPath = Path.Combine(repo, "examples", "mnist", "MnistSpec.cs");
        handle = DataHandle.Builder(data).Train("train.csv").Validation("validation.csv").Objects(".").DownloadColumns("filepath").Build();
        // The example's configs (2 MLP, 2 CNN: lr 0.001 and 0.003; StepLR, dropout 0.1) with --epochs epochs.
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(repo, "examples", "mnist", "configs.json")))!;
        json["train"]!["epochs"] = epochs;
        configs = ConfigGroup.FromJson(json.ToJsonString(), "examples/mnist/configs.json");
        configCount = configs.Expand().Count;
    }

    /// <summary>One fit: its seconds, every finished task (seconds after the start), the checkpoints written, its runs.</summary>
    private sealed record FitRun(string Side, double Seconds, List<(double At, TaskFinished Done)> Tasks, List<Written> Checkpoints,
        IReadOnlyList<RunState> Runs, string Experiment, string FitId, int CoordinatorPort);

    /// <summary>A checkpoint as it appeared in the shared store (renamed into place): its size and its header.</summary>
    private sealed record Written(CheckpointRef Key, long Bytes, CheckpointHeader? Header);

    /// <summary>A worker process: its port, its name in the fits' pools (<c>host:port</c>) and its output.</summary>
    private sealed class Worker(Process process, int port)
    {
        public Process Process { get; } = process;
        public int Port { get; } = port;
        public string Name => $"{Host}:{Port}";
        public string Address => $"akka.tcp://rapidfire@{Host}:{Port}";
        public List<string> Output { get; } = [];
        public TaskCompletionSource Up { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Tail()
        {
            lock (Output) return string.Join(Environment.NewLine, Output.TakeLast(20));
        }
    }

    public async Task Run(int reps)
    {
        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture; // numbers with '.' and ',' as in the other tables
        void KillAll(object? sender, EventArgs e) => Stop();
        Console.CancelKeyPress += KillAll;
        AppDomain.CurrentDomain.ProcessExit += KillAll;
        try
        {
            Directory.CreateDirectory(work);
            // Side (a): one worker forming its own cluster. Side (b): two, the second joining the first.
            var one = Start(null);
            var first = Start(null);
            var second = Start(first);
            await Task.WhenAll(new[] { one, first, second }.Select(WaitUp));
            var sides = new Dictionary<string, List<Worker>> { ["a"] = [one], ["b"] = [first, second] };

            var results = new Dictionary<string, List<FitRun>> { ["a"] = [], ["b"] = [] };
            var warmUp = new Dictionary<string, double>();
            for (var rep = -1; rep < reps; rep++) // repetition -1 warms up (the workers' first fit compiles the spec, JIT) and is not counted
            {
                // a, b, a, b...: a side's next fit comes after the other side's, when its previous fit's node has left its cluster
                foreach (var side in new[] { "a", "b" })
                {
                    var fit = await Fit(side, sides[side], rep);
                    if (rep < 0) warmUp[side] = fit.Seconds;
                    else results[side].Add(fit);
                }
            }
            Report(results["a"], results["b"], warmUp, sides);
        }
        finally
        {
            Console.CancelKeyPress -= KillAll;
            AppDomain.CurrentDomain.ProcessExit -= KillAll;
            Stop();
            CultureInfo.CurrentCulture = culture;
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Starts <c>rapidfire worker --devices cpu</c> on a free port, joining <paramref name="seed"/> (null: forming its own cluster).</summary>
    private Worker Start(Worker? seed)
    {
        var port = FreePort();
        var start = new ProcessStartInfo("dotnet")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = work,
        };
        foreach (var arg in new[] { cli, "worker", "--seed-nodes", seed?.Address ?? $"akka.tcp://rapidfire@{Host}:{port}", "--port", port.ToString(CultureInfo.InvariantCulture),
                     "--hostname", Host, "--devices", "cpu" })
            start.ArgumentList.Add(arg);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var worker = new Worker(process, port);
        void Line(string? line)
        {
            if (line is null) return;
            lock (worker.Output) worker.Output.Add(line);
            if (line.Contains(": up;", StringComparison.Ordinal)) worker.Up.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => Line(e.Data);
        process.ErrorDataReceived += (_, e) => Line(e.Data);
        process.Exited += (_, _) => worker.Up.TrySetException(new InvalidOperationException($"worker {worker.Name} exited (code {process.ExitCode}):\n{worker.Tail()}"));
        lock (started) started.Add(worker);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    private static async Task WaitUp(Worker worker)
    {
        if (await Task.WhenAny(worker.Up.Task, Task.Delay(TimeSpan.FromSeconds(90))) != worker.Up.Task)
            throw new TimeoutException($"worker {worker.Name} did not print `up` within 90 s:\n{worker.Tail()}");
        await worker.Up.Task;
    }

    /// <summary>Kills every worker process this benchmark started (and their children), once.</summary>
    private void Stop()
    {
        List<Worker> workers;
        lock (started)
        {
            workers = [.. started];
            started.Clear();
        }
        foreach (var worker in workers)
        {
            try
            {
                if (!worker.Process.HasExited) worker.Process.Kill(entireProcessTree: true);
                worker.Process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
                // It was never started, or it is already gone.
            }
            worker.Process.Dispose();
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>One fit on a side's cluster: a new experiment whose node joins it, timed from the fit's start to its end.</summary>
    private async Task<FitRun> Fit(string side, List<Worker> workers, int rep)
    {
        foreach (var w in workers.Where(w => w.Process.HasExited))
            throw new InvalidOperationException($"worker {w.Name} of side ({side}) has exited:\n{w.Tail()}");
        var port = FreePort();
        var config = Akka.Configuration.ConfigurationFactory.ParseString($"""
            akka.cluster.roles = [coordinator]
            akka.cluster.seed-nodes = ["{workers[0].Address}"]
            akka.remote.dot-netty.tcp.hostname = "{Host}"
            akka.remote.dot-netty.tcp.port = {port}
            """).WithFallback(RapidFireConfiguration.Profile("cluster"));
        var name = $"cluster-{side}-{rep + 1}-{Guid.NewGuid():N}"[..20];
        using var experiment = new Experiment(name, Path.Combine(work, "experiments"), config);
        await UntilMembersUp(experiment, workers.Count + 1);

        // Every checkpoint as the workers rename it into place in the shared store: its size, and its header (the
        // run's state that WriteCheckpoint carried to the worker). The runs' folders exist before, so none is missed.
        var store = Path.Combine(experiment.Path, "checkpoints");
        for (var run = 1; run <= configCount; run++) Directory.CreateDirectory(Path.Combine(store, CheckpointRef.RunFolder(run)));
        var written = new List<Written>();
        using var watcher = new FileSystemWatcher(store) { IncludeSubdirectories = true, NotifyFilter = NotifyFilters.FileName };
        void Seen(object sender, FileSystemEventArgs e)
        {
            if (!CheckpointRef.TryParse(Path.GetRelativePath(store, e.FullPath), out var key)) return;
            var (bytes, header) = ReadHeader(e.FullPath);
            if (bytes == 0) return;
            lock (written) written.Add(new Written(key, bytes, header));
        }
        watcher.Renamed += (sender, e) => Seen(sender, e);
        watcher.Created += Seen; // a rename whose two halves the watcher could not pair is reported as a creation
        watcher.EnableRaisingEvents = true;

        var tasks = new List<(double, TaskFinished)>();
        var clock = Stopwatch.StartNew();
        void Collect(ExperimentEvent e)
        {
            if (e is TaskDone done) lock (tasks) tasks.Add((clock.Elapsed.TotalSeconds, done.Task));
        }
        experiment.Progress += Collect;
        var running = experiment.RunFitAsync(SpecSource.FromFile(specPath), configs, handle, new FitOptions(Chunks: Chunks, Devices: "none"));
        while (!running.IsCompleted)
        {
            // A side whose workers are gone would wait for devices forever: fail instead, with what they printed.
            await Task.WhenAny(running, Task.Delay(500));
            if (!running.IsCompleted && workers.FirstOrDefault(w => w.Process.HasExited) is { } gone)
                throw new InvalidOperationException($"worker {gone.Name} exited during a fit of side ({side}):\n{gone.Tail()}");
            if (!running.IsCompleted && clock.Elapsed > TimeSpan.FromMinutes(10))
                throw new TimeoutException($"a fit of side ({side}) has not finished after 10 minutes");
        }
        var result = await running;
        var seconds = clock.Elapsed.TotalSeconds;
        experiment.Progress -= Collect;
        await Task.Delay(200); // the last renames' events
        watcher.EnableRaisingEvents = false;
        if (result.Runs.Any(r => r.Status != RunStatus.Completed))
            throw new InvalidOperationException($"a run of side ({side}) did not complete: " + string.Join("; ", result.Runs.Select(r => $"run {r.RunId} {r.Status} {r.Failure}")));
        experiment.End(); // leaves the cluster: the side's workers wait for the next fit
        List<Written> checkpoints;
        lock (written) checkpoints = [.. written];
        return new FitRun(side, seconds, tasks, checkpoints, result.Runs, name, $"{name}/1", port);
    }

    /// <summary>
    /// Waits until the experiment's node sees <paramref name="members"/> members up and none unreachable (it and the
    /// side's workers; the previous fit's node gone). The experiment does not expose its actor system: read by reflection.
    /// </summary>
    private static async Task UntilMembersUp(Experiment experiment, int members)
    {
        var field = typeof(Experiment).GetField("system", BindingFlags.NonPublic | BindingFlags.Instance)
            ?? throw new MissingFieldException(nameof(Experiment), "system");
        var cluster = Akka.Cluster.Cluster.Get((ActorSystem)field.GetValue(experiment)!);
        var clock = Stopwatch.StartNew();
        while (!(cluster.State.Members.Count == members && cluster.State.Members.All(m => m.Status == MemberStatus.Up) && cluster.State.Unreachable.Count == 0))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
                throw new TimeoutException($"the experiment's node sees {string.Join(", ", cluster.State.Members.Select(m => $"{m.Address} {m.Status}"))} after 60 s, not {members} members up");
            await Task.Delay(20);
        }
    }

    /// <summary>A checkpoint file's length and header (<see cref="CheckpointFile"/>: magic, version, header length, header JSON).</summary>
    private static (long Bytes, CheckpointHeader? Header) ReadHeader(string path)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var prefix = new byte[12];
            file.ReadExactly(prefix);
            var header = new byte[BinaryPrimitives.ReadInt32LittleEndian(prefix.AsSpan(8))];
            file.ReadExactly(header);
            return (file.Length, JsonSerializer.Deserialize<CheckpointHeader>(header, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return (0, null); // pruned already: not counted
        }
    }

    private static string NodeOf(string deviceId) => deviceId[..Math.Max(0, deviceId.LastIndexOf('/'))];

    /// <summary>Per run, the tasks that went to another node than the run's previous task (each restores the run's checkpoint there).</summary>
    private static List<(TaskFinished Task, CheckpointRef From)> Moves(FitRun fit)
    {
        var moves = new List<(TaskFinished, CheckpointRef)>();
        foreach (var run in fit.Tasks.Select(t => t.Done).GroupBy(t => t.Task.RunId))
        {
            string? node = null;
            foreach (var task in run)
            {
                var here = NodeOf(task.DeviceId);
                if (node is not null && here != node)
                    moves.Add((task, PreviousCheckpoint(task.Task, fit.Runs.First(r => r.RunId == task.Task.RunId).ChunksPerEpoch)!));
                node = here;
            }
        }
        return moves;
    }

    /// <summary>The run's newest checkpoint when <paramref name="task"/> starts: the one after its previous chunk (null before the first).</summary>
    private static CheckpointRef? PreviousCheckpoint(RunTask task, int chunksPerEpoch) => task.Kind == TaskKind.Validate
        ? new CheckpointRef(task.RunId, task.Epoch, chunksPerEpoch - 1)
        : task.Chunk > 0 ? new CheckpointRef(task.RunId, task.Epoch, task.Chunk - 1)
        : task.Epoch > 0 ? new CheckpointRef(task.RunId, task.Epoch - 1, chunksPerEpoch - 1)
        : null;

    private void Report(List<FitRun> a, List<FitRun> b, Dictionary<string, double> warmUp, Dictionary<string, List<Worker>> sides)
    {
        var minibatches = a[0].Tasks.Select(t => t.Done.Outcome).OfType<Trained>().Max(t => t.Timing.Minibatches);
        Bench.Report($"(i) a fit on a cluster: the example's {configCount} configs (2 MLP, 2 CNN), {epochs} epoch(s), {Chunks} chunks, " +
                     $"{handle.Open(Mode.Train).RowCount:N0} train rows; a coordinator (`--devices none`, journal + metric files) " +
                     "with 1 vs 2 worker processes of cpu:1",
            ("coordinator + 1 worker", a.Select(f => f.Seconds).ToList()), ("coordinator + 2 workers", b.Select(f => f.Seconds).ToList()));
        Console.WriteLine($"speed-up 2 workers over 1 = {Bench.Median(a.Select(f => f.Seconds).ToList()) / Bench.Median(b.Select(f => f.Seconds).ToList()):0.00}x; " +
                          $"warm-up fits (the workers' first: spec compiled, JIT; not counted): 1 worker {warmUp["a"]:0.00} s, 2 workers {warmUp["b"]:0.00} s");
        var settings = new RuntimeSettings();
        Console.WriteLine($"each worker process runs {settings.LoaderCount} data loader thread(s) and {settings.TorchThreadsFor(1)} libtorch thread(s) " +
                          $"(the defaults on {Environment.ProcessorCount} cores): 2 workers put {2 * (settings.LoaderCount + settings.TorchThreadsFor(1))} busy threads on " +
                          $"{Environment.ProcessorCount} cores, so (b) cannot reach 2x here; the coordinator (this process) journals and writes the metric files");
        foreach (var (label, fits) in new[] { ("1 worker", a), ("2 workers", b) })
        {
            var trained = fits.SelectMany(f => f.Tasks).Select(t => t.Done.Outcome).OfType<Trained>().ToList();
            var busy = trained.Sum(t => t.Timing.BusySeconds) / trained.Sum(t => t.Timing.BusySeconds + t.Timing.WaitSeconds);
            var perNode = string.Join(" / ", fits.Select(f => string.Join("+", f.Tasks.GroupBy(t => NodeOf(t.Done.DeviceId)).OrderBy(g => g.Key).Select(g => g.Count()))));
            Console.WriteLine($"{label}: a chunk ({minibatches} minibatches) trains in {Bench.Median(trained.Select(t => t.Timing.BusySeconds + t.Timing.WaitSeconds).ToList()) * 1000:0} ms " +
                              $"(median; device busy {busy:P0}, the rest waiting for minibatches); tasks per worker in each fit: {perNode}");
        }
        Console.WriteLine();
        Bytes(b, sides["b"]);
    }

    /// <summary>(j) What crosses nodes per trained chunk in the (b) fits: messages, checkpoint writes, and reads when a run moves node.</summary>
    private void Bytes(List<FitRun> fits, List<Worker> workers)
    {
        using var system = ActorSystem.Create("bench", RuntimeSettings.Reference);
        var serializer = new RemoteSerializer((ExtendedActorSystem)system);
        int Size(object message) => serializer.ToBinary(message).Length;

        // Akka.Remote wraps each message in an envelope: the recipient's and the sender's actor paths (with the node's
        // address and the actor's uid), the manifest (the type's full name), the serializer id, a sequence number and
        // the frame's length. Estimated from the real paths' lengths plus 16 bytes of protobuf tags and lengths.
        static int Envelope(object message, string recipient, string sender) =>
            Encoding.UTF8.GetByteCount(recipient) + Encoding.UTF8.GetByteCount(sender) + Encoding.UTF8.GetByteCount(message.GetType().FullName!) + 16;
        const string Uid = "#1234567890";

        var order = new List<double>();
        var finished = new List<double>();
        var write = new List<double>();
        var writtenAck = new List<double>();
        var envelopes = new List<double>();
        var validationOrder = new List<double>();
        var validationFinished = new List<double>();
        var checkpointBytes = new List<double>();
        var records = new List<double>();
        var stateBytes = new List<double>();
        long moves = 0, movesRead = 0, trainedChunks = 0, tasks = 0, checkpointsSeen = 0;
        foreach (var fit in fits)
        {
            // The worker's part in the fit (the holder of its checkpoints): .../user/rapidfire-worker/fit-{experiment%2Fn}; the
            // fit's actor on the coordinator: /user/experiment/fit-{n}; a run's ask for a write: /temp/$x.
            var holders = fit.Tasks.Select(t => t.Done.Outcome).OfType<Trained>().Select(t => t.Holder?.Path.ToSerializationFormat()).OfType<string>().ToList();
            var anyHolder = holders.FirstOrDefault() ?? $"{workers[0].Address}/user/{WorkerProtocol.WorkerName}/fit-{Uri.EscapeDataString(fit.FitId)}{Uid}";
            var fitNumber = Uri.UnescapeDataString(anyHolder[(anyHolder.LastIndexOf("/fit-", StringComparison.Ordinal) + 5)..anyHolder.IndexOf('#')]).Split('/')[^1];
            var coordinator = $"akka.tcp://rapidfire@{Host}:{fit.CoordinatorPort}";
            var fitActor = $"{coordinator}/user/experiment/fit-{fitNumber}{Uid}";
            var asker = $"{coordinator}/temp/$a{Uid}";
            var seenByKey = fit.Checkpoints.GroupBy(c => c.Key).ToDictionary(g => g.Key, g => g.Last());
            checkpointsSeen += seenByKey.Count;
            foreach (var (_, done) in fit.Tasks)
            {
                tasks++;
                var run = fit.Runs.First(r => r.RunId == done.Task.RunId);
                var runTaskOn = new RunTaskOn(done.Task, run.Config, run.ChunksPerEpoch, PreviousCheckpoint(done.Task, run.ChunksPerEpoch));
                var holder = done.Outcome is Trained { Holder: { } h } ? h.Path.ToSerializationFormat() : anyHolder;
                var gpu = $"{holder[..holder.IndexOf('#')]}/device-cpu{Uid}";
                if (done.Outcome is Trained trained)
                {
                    trainedChunks++;
                    order.Add(Size(runTaskOn));
                    finished.Add(Size(done));
                    records.Add(trained.Records.Count);
                    var envelope = Envelope(runTaskOn, gpu, fitActor) + Envelope(done, fitActor, gpu);
                    if (trained.Checkpoint is { } key)
                    {
                        var ack = new WorkerProtocol.CheckpointWritten(key);
                        writtenAck.Add(Size(ack));
                        envelope += Envelope(ack, asker, holder);
                        if (seenByKey.TryGetValue(key, out var seen))
                        {
                            checkpointBytes.Add(seen.Bytes);
                            if (seen.Header is { } header)
                            {
                                stateBytes.Add(Encoding.UTF8.GetByteCount(header.State));
                                var message = WorkerProtocol.WriteCheckpoint.Of(key, header, run.ChunksPerEpoch);
                                write.Add(Size(message));
                                envelope += Envelope(message, holder, asker);
                            }
                        }
                    }
                    envelopes.Add(envelope);
                }
                else if (done.Outcome is Validated)
                {
                    validationOrder.Add(Size(runTaskOn));
                    validationFinished.Add(Size(done));
                }
            }
            foreach (var (_, from) in Moves(fit))
            {
                moves++;
                movesRead += seenByKey.TryGetValue(from, out var read) ? read.Bytes
                    : (long)fit.Checkpoints.Where(c => c.Key.RunId == from.RunId).Select(c => (double)c.Bytes).DefaultIfEmpty(0).Average();
            }
        }
        var join = new WorkerProtocol.JoinFit(fits[0].FitId, SpecPackage.From(SpecReference.FromFile(specPath)), handle.ToJson(data), data,
            new RuntimeSettings(Chunks: Chunks, Devices: "none"), Path.Combine(work, "experiments", fits[0].Experiment, "checkpoints"));

        static double Mean(List<double> values) => values.Count == 0 ? double.NaN : values.Average();
        static double Max(List<double> values) => values.Count == 0 ? double.NaN : values.Max();
        var messages = Mean(order) + Mean(finished) + Mean(write) + Mean(writtenAck) + Mean(envelopes);
        var checkpoint = Mean(checkpointBytes);
        var readPerChunk = (double)movesRead / trainedChunks;
        var trainedTasks = fits.SelectMany(f => f.Tasks).Select(t => t.Done.Outcome).OfType<Trained>().ToList();
        var minibatches = trainedTasks.Max(t => t.Timing.Minibatches);

        Console.WriteLine($"## (j) bytes that cross nodes per trained chunk, in the {fits.Count} fits with 2 workers ({trainedChunks} chunks, {tasks - trainedChunks} validations)");
        Console.WriteLine();
        Console.WriteLine("| what | between | mean bytes per chunk | largest | how it is measured |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        Console.WriteLine($"| `RunTaskOn`: task, config, previous checkpoint key | coordinator → worker | {Mean(order):N0} | {Max(order):N0} | `RemoteSerializer`, the message of every chunk rebuilt from its task, its run's config and previous checkpoint |");
        Console.WriteLine($"| `TaskFinished`: {Mean(records):0} minibatch records, timing, checkpoint key, holder | worker → coordinator | {Mean(finished):N0} | {Max(finished):N0} | `RemoteSerializer` on the messages the coordinator received |");
        Console.WriteLine($"| `WriteCheckpoint`: key, header, the run's state gzipped (JSON: {Mean(stateBytes):N0} bytes on average, {Max(stateBytes):N0} at most) | coordinator → worker | {Mean(write):N0} | {Max(write):N0} | `RemoteSerializer`, the header read back from each checkpoint as it was written ({write.Count} of {trainedChunks}) |");
        Console.WriteLine($"| `CheckpointWritten` | worker → coordinator | {Mean(writtenAck):N0} | {Max(writtenAck):N0} | `RemoteSerializer` |");
        Console.WriteLine($"| Akka.Remote envelopes of these 4 messages | both | {Mean(envelopes):N0} | {Max(envelopes):N0} | estimated: actor paths, manifests, +16 bytes each |");
        Console.WriteLine($"| **messages, total** | coordinator ↔ worker | **{messages:N0}** | | |");
        Console.WriteLine($"| **checkpoint written** (model, Adam state, run state) | worker → shared store | **{checkpoint:N0}** | {Max(checkpointBytes):N0} | file sizes as renamed into place ({checkpointsSeen} seen for {trainedChunks} chunks) |");
        Console.WriteLine($"| checkpoint read back when a run moves node ({moves} moves in {tasks} tasks) | shared store → worker | {readPerChunk:N0} | | each move restores the run's newest checkpoint: {(moves == 0 ? 0 : movesRead / moves):N0} bytes per move |");
        Console.WriteLine();
        Console.WriteLine($"per validation (once per run and epoch): `RunTaskOn` {Mean(validationOrder):N0} + `TaskFinished` {Mean(validationFinished):N0} bytes; " +
                          $"per fit and worker: `JoinFit` (the spec's source, the data handle, the settings) {Size(join):N0} bytes; " +
                          "besides, Akka.Cluster's heartbeats and gossip (about 1/s between members), not counted here. " +
                          "Akka.Remote's maximum frame is 4,000,000 bytes (config/cluster.conf); a run whose gzipped state nears half of it fails, saying so");
        // A chunk's checkpoint is written by the worker's store thread while its device trains another run; the restore
        // of a run that moved is on the device's path (it precedes the chunk). Messages are a round trip per chunk.
        var compute = Bench.Median(trainedTasks.Select(t => t.Timing.BusySeconds + t.Timing.WaitSeconds).ToList());
        foreach (var gbits in new[] { 1.0, 10.0 })
        {
            double Ms(double bytes) => bytes * 8 / (gbits * 1e9) * 1000;
            Console.WriteLine($"at {gbits:0} Gbit/s, per chunk: messages {Ms(messages):0.00} ms, checkpoint write {Ms(checkpoint):0.0} ms (beside the device), " +
                              $"reads on moves {Ms(readPerChunk):0.0} ms (on the device's path: {Ms(readPerChunk) / 1000 / compute:P1} of a chunk's " +
                              $"{compute * 1000:0} ms of compute here, {minibatches} minibatches on one CPU core)");
        }
        Console.WriteLine();
    }
}
