using System.Net;
using System.Net.Sockets;

namespace RapidFire.Host.Tests;

/// <summary>
/// A fit on a cluster of real processes on loopback: `rapidfire fit --devices none` (the experiment's node) and two
/// `rapidfire worker` processes sharing the experiment's checkpoint folder. A worker is killed with SIGKILL in the
/// middle of the fit, then the experiment's node too; `rapidfire resume` with a new worker finishes it, and the result
/// equals the uninterrupted one-node fit bit for bit.
/// </summary>
[Collection(ExperimentCollection.Name)]
public sealed class ClusterCliTests(UninterruptedFit full) : IClassFixture<UninterruptedFit>, IDisposable
{
    private readonly List<string> folders = [];

    public void Dispose()
    {
        foreach (var folder in folders) System.IO.Directory.Delete(folder, recursive: true);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Node(int port) => $"akka.tcp://rapidfire@127.0.0.1:{port}";

    /// <summary>A worker started in an empty folder: no copy of the spec or the data handle; the spec arrives as source.</summary>
    private ChildCli Worker(int coordinatorPort, string settings)
    {
        var folder = System.IO.Directory.CreateTempSubdirectory("rf-worker-").FullName;
        folders.Add(folder);
        return ChildCli.StartIn(folder, "worker", "--seed-nodes", Node(coordinatorPort), "--devices", "cpu", "--settings", settings);
    }

    private static async Task Until(Func<bool> condition, ChildCli watched, string what)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!condition())
        {
            Assert.False(watched.HasExited, $"the process ended before {what}: {watched.Output}");
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}: {watched.Output}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_cluster_fit_survives_a_worker_and_then_its_coordinator_killed_mid_fit_and_ends_as_one_node_fit()
    {
        // Failure detection tuned for a test: a silent node is unreachable after 2 s and downed 2 s later (the
        // defaults of config/cluster.conf are 10 s and 20 s).
        var settings = Path.Combine(full.Directory, "cluster-test.conf");
        File.WriteAllText(settings, """
            akka.cluster.failure-detector { heartbeat-interval = 500ms, acceptable-heartbeat-pause = 2s }
            akka.cluster.split-brain-resolver.stable-after = 2s
            """);
        var experiment = Path.Combine(full.Experiments, "cluster");
        var checkpoints = Path.Combine(experiment, "checkpoints");
        // Every checkpoint file seen so far: retention deletes old ones as new ones come, so a count of files on disk
        // can stand still while training goes on.
        var seen = new HashSet<string>();
        int Checkpoints(int run)
        {
            if (Directory.Exists(Path.Combine(checkpoints, $"run-{run}")))
                seen.UnionWith(Directory.EnumerateFiles(Path.Combine(checkpoints, $"run-{run}"), "*.ckpt"));
            return seen.Count(f => f.Contains($"{Path.DirectorySeparatorChar}run-{run}{Path.DirectorySeparatorChar}", StringComparison.Ordinal));
        }
        string Log() => File.Exists(Path.Combine(experiment, "experiment.log")) ? File.ReadAllText(Path.Combine(experiment, "experiment.log")) : "";

        var port = FreePort();
        using (var coordinator = ChildCli.Start(full.FitArgs("cluster", "--devices", "none", "--port", port.ToString(), "--min-workers", "2", "--settings", settings)))
        using (var first = Worker(port, settings))
        using (var second = Worker(port, settings))
        {
            await Until(() => Log().Split('\n').Count(l => l.Contains("joined with")) == 2, coordinator, "both workers joined");
            await Until(() => Checkpoints(1) >= 1 && Checkpoints(2) >= 1, coordinator, "a chunk of each run");
            // The worker that joined first trains run 1 (the first run goes to the first device, and stays on its node):
            // killed, it takes run 1's task in flight with it. The other may have finished run 2 already (its MLP is
            // faster than run 1's CNN), and a worker with nothing in flight would leave no task for the fit to wait on.
            var firstJoined = Log().Split('\n').First(l => l.Contains("joined with")).Split("worker ")[1].Split(' ')[0];
            var (busy, other) = first.Output.Contains($"worker {firstJoined}:") ? (first, second) : (second, first);
            busy.Kill();
            await Until(() => Log().Contains("left the fit"), coordinator, "the killed worker left the fit");
            var after = Checkpoints(1) + Checkpoints(2);
            await Until(() => Checkpoints(1) + Checkpoints(2) > after, coordinator, "training on the other worker");
            Assert.False(File.Exists(Path.Combine(experiment, "runs.csv")), "the fit ended before the coordinator could be killed");
            coordinator.Kill();
            other.Kill();
        }

        var resumedPort = FreePort();
        using var third = Worker(resumedPort, settings);
        var (code, output) = await ChildCli.RunAsync("resume", "--experiment", "cluster", "--dir", full.Experiments,
            "--port", resumedPort.ToString(), "--settings", settings);

        Assert.True(code == 0, output + third.Output);
        Assert.Contains("fit done", output);
        Assert.Contains("is unreachable (a network partition, or its process stopped)", Log()); // reported before it is removed
        Assert.Contains("its tasks in flight are trained again elsewhere", Log());
        full.AssertSame(experiment); // runs.csv, every metric file and the final weights equal the one-node fit's
    }
}
