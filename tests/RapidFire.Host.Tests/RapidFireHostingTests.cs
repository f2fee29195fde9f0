using System.Collections.Concurrent;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RapidFire.Actors.Runs;
using RapidFire.Host.Hosting;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host.Tests;

/// <summary>RapidFire in a host app's Generic Host: the experiment factory from DI, and the app's own ActorSystem as a worker.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class RapidFireHostingTests : IDisposable
{
    private readonly SmallMnist mnist = new();

    public void Dispose() => mnist.Dispose();

    private string Experiments => Path.Combine(mnist.Directory, "experiments");

    [Fact]
    public async Task A_generic_host_resolves_the_experiment_factory_runs_a_fit_and_releases_what_it_opened_when_it_stops()
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddRapidFire(o => o.Directory = Experiments);
        using (var host = builder.Build())
        {
            await host.StartAsync();
            var factory = host.Services.GetRequiredService<IExperimentFactory>();
            var experiment = factory.Create("hosted");
            var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 1));
            Assert.All(result.Runs, r => Assert.Equal((RunStatus.Completed, EndReason.Epochs), (r.Status, r.EndedBy)));
            Assert.Equal(2, result.Runs.Count);
            await host.StopAsync();
        } // the experiment is left open on purpose: disposing the host's services releases it (not ended)

        using var again = Experiment.Open("hosted", Experiments);
        var runs = await again.RunsAsync();
        Assert.Equal([1, 2], runs.Runs.Select(r => r.RunId));
        Assert.All(runs.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
    }

    [Fact]
    public async Task A_worker_service_trains_a_cluster_fit_in_the_apps_own_ActorSystem()
    {
        var cluster = Akka.Configuration.ConfigurationFactory.ParseString("""
            akka.actor.provider = cluster
            akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0 }
            rapidfire.cluster.min-workers = 1
            """);
        using var experiment = new Experiment("clustered", Experiments, cluster);
        Assert.NotNull(experiment.ClusterAddress);
        var tasks = new ConcurrentBag<TaskDone>();
        experiment.Progress += e => { if (e is TaskDone done) tasks.Add(done); };

        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Services.AddAkka("rapidfire", akka => akka
            .WithRemoting("127.0.0.1", 0)
            .WithActorRefProvider(Akka.Actor.ProviderSelection.Cluster.Instance) // WithClustering (Akka.Cluster.Hosting) does both
            .AddHocon($"akka.cluster.roles = [gpu], akka.cluster.seed-nodes = [\"{experiment.ClusterAddress}\"]", HoconAddMode.Prepend)
            .WithRapidFire()
            .WithRapidFireWorker("cpu"));
        using var host = builder.Build();
        await host.StartAsync();
        var worker = Akka.Cluster.Cluster.Get(host.Services.GetRequiredService<Akka.Actor.ActorSystem>()).SelfAddress;

        var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
            ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 1, Devices: "none"));

        Assert.All(result.Runs, r => Assert.Equal((RunStatus.Completed, EndReason.Epochs), (r.Status, r.EndedBy)));
        Assert.NotEmpty(tasks);
        Assert.All(tasks, t => Assert.StartsWith($"{worker.Host}:{worker.Port}", t.Task.DeviceId));
        await host.StopAsync();
    }

    [Fact]
    public void A_worker_off_a_cluster_or_without_seed_nodes_is_refused_with_what_to_set()
    {
        Assert.Contains("akka.actor.provider: a RapidFire worker is a cluster node", Refusal(akka => akka.WithRemoting("127.0.0.1", 0)));
        Assert.Contains("akka.cluster.seed-nodes: a worker joins a cluster", Refusal(akka => akka.AddHocon("akka.remote.dot-netty.tcp.port = 0", HoconAddMode.Prepend)));

        static string Refusal(Action<AkkaConfigurationBuilder> node)
        {
            var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
            builder.Services.AddAkka("rapidfire", akka =>
            {
                node(akka);
                akka.WithRapidFire().WithRapidFireWorker("cpu");
            });
            using var host = builder.Build();
            return Assert.ThrowsAny<Exception>(() => host.StartAsync().GetAwaiter().GetResult()).Message;
        }
    }
}
