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

    private static Config Node(string role) => ConfigurationFactory.ParseString($$"""
        akka.actor.provider = cluster
        akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
        akka.cluster.roles = [{{role}}]
        akka.loglevel = ERROR
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

    private (IActorRef Fit, TrainingServices Services) Coordinator(RuntimeSettings settings)
    {
        settings = settings with { JournalIdPrefix = $"{Guid.NewGuid():N}/" };
        var s = new TrainingServices(() => new TinySpec(), data.Handle, settings, new TrainingServices.Storage(new LocalCheckpointStore(checkpoints)));
        services.Add(s);
        var join = new WorkerProtocol.JoinFit("tiny/1", new SpecPackage("TinySpec", null, null, typeof(TinySpec).AssemblyQualifiedName),
            data.Handle.ToJson(data.Directory), data.Directory, settings, checkpoints);
        return (Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse("none", () => 0), join)), s);
    }

    [Fact]
    public async Task A_fit_spread_over_two_workers_trains_every_run_and_ends_where_one_node_ends()
    {
        var runs = new[] { Config(8), Config(12), Config(16) }.Select((c, i) => new RunDefinition(i + 1, c)).ToList();
        // The reference: the same fit on one node, in one actor system.
        var alone = new TrainingServices(() => new TinySpec(), data.Handle, new RuntimeSettings(Chunks: 3, JournalIdPrefix: $"{Guid.NewGuid():N}/"));
        services.Add(alone);
        var reference = await Sys.ActorOf(FitActor.Props(alone, DeviceSpec.Parse("cpu", () => 0))).Ask<FitCompleted>(new RunFit(runs), Patience);

        await Worker();
        await Worker();
        var tasks = CreateTestProbe();
        var changes = CreateTestProbe();
        Sys.EventStream.Subscribe(tasks, typeof(TaskFinished));
        Sys.EventStream.Subscribe(changes, typeof(WorkerChanged));
        var (fit, _) = Coordinator(new RuntimeSettings(Chunks: 3));
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
}
