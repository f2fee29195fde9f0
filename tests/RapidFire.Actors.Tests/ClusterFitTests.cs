using Akka.Actor;
using Akka.Configuration;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Cluster;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using static RapidFire.Actors.Training.GpuProtocol;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>
/// A fit on an Akka cluster of several actor systems in this process, on loopback ports: the test system is the
/// experiment's node (no devices of its own), two worker systems (role gpu) bring one CPU device each. Every message
/// between them goes through remoting and the RemoteSerializer; run states move through the shared checkpoint folder.
/// </summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class ClusterFitTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(40);
    private readonly TinyData data = new();
    private readonly string checkpoints = Path.Combine(Path.GetTempPath(), $"rf-cluster-{Guid.NewGuid():N}");
    private readonly List<ActorSystem> workers = [];
    private readonly List<TrainingServices> services = [];

    public ClusterFitTests() : base(Node("coordinator"), "rapidfire") { }

    private static Config Node(string role, string frame = "4000000b") => ConfigurationFactory.ParseString($$"""
        akka.remote.dot-netty.tcp.maximum-frame-size = {{frame}}
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
        akka.cluster.roles = [{{role}}]
        akka.loglevel = WARNING
        akka.log-dead-letters-during-shutdown = off
        """).WithFallback(RuntimeSettings.Reference);

    void IDisposable.Dispose()
    {
        foreach (var worker in workers) worker.Terminate().Wait(TimeSpan.FromSeconds(10));
        foreach (var s in services) s.Dispose();
        data.Dispose();
        if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
        Shutdown();
    }

    private static Cfg Config(long hidden) => new(new Dictionary<string, object?>
    {
        ["hidden"] = hidden,
        ["epochs"] = 2L,
        ["batch_size"] = 16L,
        ["optimizer"] = new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } },
        ["named_metrics"] = new[] { "top1_accuracy" },
    });

    /// <summary>Starts a worker node with one CPU device and waits until it is up in the cluster.</summary>
    private async Task<ActorSystem> Worker()
    {
        var cluster = Akka.Cluster.Cluster.Get(Sys);
        if (cluster.SelfMember.Status != Akka.Cluster.MemberStatus.Up) await cluster.JoinAsync(cluster.SelfAddress);
        var system = ActorSystem.Create("rapidfire", Node(WorkerProtocol.WorkerRole));
        workers.Add(system);
        var address = ((ExtendedActorSystem)system).Provider.DefaultAddress;
        system.ActorOf(WorkerActor.Props($"{address.Host}:{address.Port}", DeviceSpec.Parse("cpu", () => 0),
            location => new TrainingServices.Storage(new LocalCheckpointStore(location))), WorkerProtocol.WorkerName);
        await Akka.Cluster.Cluster.Get(system).JoinAsync(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        return system;
    }

    private static readonly SpecPackage Tiny = new("TinySpec", null, null, typeof(TinySpec).AssemblyQualifiedName);

    /// <summary>The experiment's side of a fit: its services (with the spec <paramref name="spec"/>), and a FitActor asking the workers to join.</summary>
    /// <remarks>The fit runs in <paramref name="system"/> (default: the test system) over <paramref name="tiny"/> (default: the class's data).</remarks>
    private (IActorRef Fit, TrainingServices Services) Coordinator(RuntimeSettings settings, SpecPackage? spec = null, string devices = "none",
        SpecPackage? shipped = null, ActorSystem? system = null, TinyData? tiny = null)
    {
        tiny ??= data;
        settings = settings with { JournalIdPrefix = $"{Guid.NewGuid():N}/" };
        var s = new TrainingServices((spec ?? Tiny).Factory(), tiny.Handle, settings, new TrainingServices.Storage(new LocalCheckpointStore(checkpoints)));
        services.Add(s);
        var join = new WorkerProtocol.JoinFit($"tiny/{Guid.NewGuid():N}", shipped ?? spec ?? Tiny,
            tiny.Handle.ToJson(tiny.Directory), tiny.Directory, settings, checkpoints);
        return ((system ?? Sys).ActorOf(FitActor.Props(s, DeviceSpec.Parse(devices, () => 0), join)), s);
    }

    private async Task<FitCompleted> Reference(IReadOnlyList<RunDefinition> runs, int chunks = 3)
    {
        var alone = new TrainingServices(() => new TinySpec(), data.Handle, new RuntimeSettings(Chunks: chunks, JournalIdPrefix: $"{Guid.NewGuid():N}/"));
        services.Add(alone);
        return await Sys.ActorOf(FitActor.Props(alone, DeviceSpec.Parse("cpu", () => 0))).Ask<FitCompleted>(new RunFit(runs), Patience);
    }

    /// <summary>How many times a run's next task went to another node than its last one: each such move restores its state from the store.</summary>
    private static int Moves(IEnumerable<TaskFinished> finished) => finished
        .GroupBy(f => f.Task.RunId)
        .Sum(run => run.Select(f => f.DeviceId.Split('/')[0]).Zip(run.Select(f => f.DeviceId.Split('/')[0]).Skip(1)).Count(p => p.Item1 != p.Item2));

    [Fact]
    public async Task A_fit_spread_over_two_workers_trains_every_run_and_ends_where_one_node_ends()
    {
        var runs = new[] { Config(8), Config(12), Config(16) }.Select((c, i) => new RunDefinition(i + 1, c)).ToList();
        var reference = await Reference(runs); // the same fit on one node, in one actor system

        await Worker();
        await Worker();
        // The experiment's node waits for both workers before it trains (as `rapidfire fit --min-workers 2`), so that
        // the second worker cannot join after the first has taken every task.
        var coordinator = ActorSystem.Create("rapidfire", ConfigurationFactory.ParseString("rapidfire.cluster.min-workers = 2").WithFallback(Node("coordinator")));
        workers.Add(coordinator);
        await Akka.Cluster.Cluster.Get(coordinator).JoinAsync(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        var tasks = CreateTestProbe();
        var changes = CreateTestProbe();
        coordinator.EventStream.Subscribe(tasks, typeof(TaskFinished));
        coordinator.EventStream.Subscribe(changes, typeof(WorkerChanged));
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 3), system: coordinator);
        var result = await fit.Ask<FitCompleted>(new RunFit(runs), Patience);

        Assert.All(result.Runs, r => Assert.Equal((RunStatus.Completed, 2), (r.Status, r.EpochsDone)));
        var finished = tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m);
        var nodes = finished.Select(f => f.DeviceId.Split('/')[0]).Distinct().ToList();
        Assert.Equal(2, nodes.Count); // both workers trained
        Assert.All(finished, f => Assert.EndsWith("/cpu", f.DeviceId));
        Assert.Equal(2, changes.ReceiveWhile(TimeSpan.FromMilliseconds(200), m => (WorkerChanged)m).Count(c => c.Message.Contains("joined")));
        // States moved between the workers through the checkpoint folder: every run ends bit-identical to the one-node fit.
        for (var i = 0; i < runs.Count; i++)
            Assert.Equal(reference.Runs[i].ValidationHistory[^1]["loss"], result.Runs[i].ValidationHistory[^1]["loss"]);
    }

    [Fact]
    public async Task A_worker_that_leaves_mid_fit_loses_no_chunk_and_the_other_finishes_every_run()
    {
        var runs = new[] { Config(8).With("sleep_ms", 20L), Config(12).With("sleep_ms", 20L) }.Select((c, i) => new RunDefinition(i + 1, c)).ToList();
        var reference = await Reference(runs);
        var first = await Worker();
        await Worker();
        var tasks = CreateTestProbe();
        Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 3));
        var done = fit.Ask<FitCompleted>(new RunFit(runs), Patience);

        // Once each worker has trained a chunk, the first one goes away in the middle of its next.
        var name = $"{Akka.Cluster.Cluster.Get(first).SelfAddress.Host}:{Akka.Cluster.Cluster.Get(first).SelfAddress.Port}";
        var seen = new List<TaskFinished>();
        while (seen.Select(f => f.DeviceId.Split('/')[0]).Distinct().Count() < 2) seen.Add(tasks.ExpectMsg<TaskFinished>(Patience));
        await first.Terminate();
        var result = await done;

        Assert.All(result.Runs, r => Assert.Equal((RunStatus.Completed, 2), (r.Status, r.EpochsDone)));
        var finished = seen.Concat(tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m)).ToList();
        Assert.Contains(finished, f => !f.DeviceId.StartsWith(name));
        // Every chunk is in the journal once, and the runs end exactly as on one node: nothing lost, nothing trained twice.
        for (var i = 0; i < runs.Count; i++)
        {
            Assert.Equal(6, result.Runs[i].ChunksTrained);
            Assert.Equal(reference.Runs[i].ValidationHistory.Select(v => v["loss"]), result.Runs[i].ValidationHistory.Select(v => v["loss"]));
        }
    }

    /// <summary>A spec that exists on no disk: it reaches the workers as source, and they compile it.</summary>
    private const string ShippedSource = """
        using RapidFire.Spec;
        using TorchSharp;
        using static TorchSharp.torch;

        public sealed class ShippedSpec : MLSpec
        {
            public override object RowPrep(Row row, Config cfg, Mode mode) => new Dictionary<string, object>
            {
                ["x"] = torch.tensor(new[] { row.GetSingle("x0"), row.GetSingle("x1"), row.GetSingle("x2"), row.GetSingle("x3") }),
                ["y"] = torch.tensor(row.GetInt64("label")),
            };

            public override nn.Module CreateModel(Config cfg) => nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2));

            public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
            {
                var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["x"]);
                return (nn.functional.cross_entropy(logits, minibatch["y"]), new Dictionary<string, object> { ["predictions"] = logits.argmax(1), ["targets"] = minibatch["y"] });
            }
        }
        """;

    private static SpecPackage Package(string source) =>
        new("ShippedSpec.cs", source, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(source))).ToLowerInvariant(), null);

    [Fact]
    public async Task The_spec_travels_as_source_and_a_worker_compiles_it()
    {
        await Worker();
        var tasks = CreateTestProbe();
        Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 2), Package(ShippedSource));
        var result = await fit.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(6))]), Patience);

        Assert.Equal(RunStatus.Completed, Assert.Single(result.Runs).Status);
        Assert.All(tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m), f => Assert.EndsWith("/cpu", f.DeviceId));
        Assert.True(result.Runs[0].ValidationHistory[^1]["top1_accuracy"] > 0.5);
    }

    [Fact]
    public async Task A_worker_that_cannot_compile_the_spec_is_left_out_naming_it_and_the_fit_goes_on()
    {
        var worker = await Worker();
        var changes = CreateTestProbe();
        Sys.EventStream.Subscribe(changes, typeof(WorkerChanged));
        var broken = Package(ShippedSource.Replace("nn.ReLU(),", "nn.ReLU()"));
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 2), devices: "cpu", shipped: broken);
        var result = await fit.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(6))]), Patience);

        Assert.Equal(RunStatus.Completed, Assert.Single(result.Runs).Status); // on the experiment's own device
        var address = Akka.Cluster.Cluster.Get(worker).SelfAddress;
        var left = changes.FishForMessage<WorkerChanged>(c => c.Message.Contains("left out"), Patience);
        Assert.StartsWith($"worker {address.Host}:{address.Port} left out: worker {address.Host}:{address.Port}: ShippedSpec.cs(", left.Message);
        Assert.Contains("error CS", left.Message);
    }

    [Fact]
    public async Task Locality_sends_runs_back_to_the_node_that_holds_their_state_so_fewer_states_move()
    {
        // Two runs, two one-device workers, short chunks: both devices are often free at once, and the run whose report
        // comes first takes the first free device unless locality sends it home.
        var runs = Enumerable.Range(0, 2).Select(i => new RunDefinition(i + 1, Config(8 + 2 * i))).ToList();
        await Worker();
        await Worker();
        var moves = new Dictionary<bool, int>();
        foreach (var locality in new[] { true, false })
        {
            var tasks = CreateTestProbe();
            Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
            var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 6, Locality: locality));
            var result = await fit.Ask<FitCompleted>(new RunFit(runs), Patience);
            Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
            moves[locality] = Moves(tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m));
            Sys.EventStream.Unsubscribe(tasks);
        }
        Assert.True(moves[true] < moves[false], $"state moves with locality {moves[true]}, without {moves[false]}");
        Console.WriteLine($"state moves with locality {moves[true]}, without {moves[false]}");
    }

    [Fact]
    public async Task A_worker_that_joins_during_a_fit_trains_from_its_next_free_slot()
    {
        // Long enough (4 epochs of 6 minibatches of 100 ms per run) that the late worker joins while there is work left,
        // even on a loaded machine where joining the cluster takes seconds.
        var runs = new[] { Config(8).With("sleep_ms", 100L).With("epochs", 4L), Config(12).With("sleep_ms", 100L).With("epochs", 4L) }
            .Select((c, i) => new RunDefinition(i + 1, c)).ToList();
        await Worker();
        var tasks = CreateTestProbe();
        var changes = CreateTestProbe();
        Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
        Sys.EventStream.Subscribe(changes, typeof(WorkerChanged));
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 3));
        var done = fit.Ask<FitCompleted>(new RunFit(runs), Patience);
        var first = tasks.ExpectMsg<TaskFinished>(Patience);

        var late = await Worker();
        var address = Akka.Cluster.Cluster.Get(late).SelfAddress;
        var result = await done;

        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
        var finished = tasks.ReceiveWhile(TimeSpan.FromSeconds(1), m => (TaskFinished)m).Prepend(first).ToList();
        Assert.Contains(finished, f => f.DeviceId == $"{address.Host}:{address.Port}/cpu");
        Assert.Contains(changes.ReceiveWhile(TimeSpan.FromMilliseconds(300), m => (WorkerChanged)m),
            c => c.Message == $"worker {address.Host}:{address.Port} joined with {address.Host}:{address.Port}/cpu");
    }

    [Fact]
    public async Task A_run_whose_state_outgrows_the_frame_between_nodes_fails_saying_what_to_raise_instead_of_retrying()
    {
        // Akka's smallest frame, 32,000 bytes; 1,200 one-row minibatches in 40 chunks: each chunk's report is small,
        // but the epoch's records in the run's state outgrow the frame, gzipped, before the epoch ends.
        var small = ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.maximum-frame-size = 32000b");
        using var big = new TinyData(train: 1200, validation: 16);
        var runs = new[] { new RunDefinition(1, Config(8).With("batch_size", 1L).With("epochs", 1L)) };
        await Worker();
        // A run actor reads the frame from its system's settings: a second coordinator system with a small frame.
        var coordinator = ActorSystem.Create("rapidfire", small.WithFallback(Node("coordinator")));
        workers.Add(coordinator);
        await Akka.Cluster.Cluster.Get(coordinator).JoinAsync(Akka.Cluster.Cluster.Get(Sys).SelfAddress);
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 40), system: coordinator, tiny: big);
        var result = await fit.Ask<FitCompleted>(new RunFit(runs), Patience);

        var failed = Assert.Single(result.Runs);
        Assert.Equal(RunStatus.Failed, failed.Status);
        Assert.Contains("too close to akka.remote.dot-netty.tcp.maximum-frame-size (32,000 bytes)", failed.Failure!.Message);
        Assert.True(failed.ChunksTrained > 1, "it trained until its state outgrew the frame");
    }
}
