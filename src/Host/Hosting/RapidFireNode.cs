using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace RapidFire.Host.Hosting;

/// <summary>
/// The one place an ActorSystem of RapidFire's own is built: an experiment's (embedded, or the cluster's experiment
/// node) and a <c>rapidfire worker</c>'s. A minimal Generic Host runs Akka.Hosting's service, configured by
/// <see cref="RapidFireHosting.WithRapidFire"/> and what a caller adds; host apps use the same
/// extensions on their own host.
/// </summary>
internal sealed class RapidFireNode : IDisposable
{
    /// <summary>The name of every RapidFire ActorSystem: the nodes of one cluster share it.</summary>
    public const string SystemName = "rapidfire";

    private readonly IHost host;

    private RapidFireNode(IHost host, ActorSystem system)
    {
        this.host = host;
        System = system;
    }

    /// <summary>The node's ActorSystem, started.</summary>
    public ActorSystem System { get; }

    /// <summary>
    /// Starts a node on <paramref name="hocon"/> (layered over RapidFire's <c>reference.conf</c>), with what
    /// <paramref name="configure"/> adds (actors, startup tasks). A system that cannot start (a port in use, a bad
    /// setting) throws here, with Akka's message.
    /// </summary>
    public static RapidFireNode Start(Akka.Configuration.Config hocon, Action<AkkaConfigurationBuilder>? configure = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddAkka(SystemName, akka =>
        {
            akka.WithRapidFire(hocon);
            configure?.Invoke(akka);
        });
        var host = builder.Build();
        try
        {
            // Built before the hosted service starts, so that a failure is thrown here and not printed by Akka.Hosting.
            var system = host.Services.GetRequiredService<ActorSystem>();
            host.StartAsync().GetAwaiter().GetResult();
            return new RapidFireNode(host, system);
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <summary>
    /// On a cluster (<c>akka.actor.provider = cluster</c>), joins it: through the configured seed nodes, or, with none,
    /// as the first node (the cluster forms around this one). Returns this node's address; null off a cluster.
    /// </summary>
    public string? FormCluster()
    {
        if (!Actors.Cluster.WorkerProtocol.IsClusterNode(System)) return null;
        var cluster = Akka.Cluster.Cluster.Get(System);
        if (cluster.Settings.SeedNodes.Count == 0) cluster.Join(cluster.SelfAddress);
        return cluster.SelfAddress.ToString();
    }

    /// <summary>Runs the system's coordinated shutdown (a cluster node leaves the cluster) and waits up to <paramref name="timeout"/>.</summary>
    public void Stop(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            host.StopAsync(limit.Token).Wait(timeout);
        }
        catch (AggregateException e) when (e.InnerException is OperationCanceledException)
        {
            // past the timeout: the system terminates on its own, as Terminate() left it before
        }
        System.WhenTerminated.Wait(timeout);
    }

    /// <summary>Stops the node (30 s at most) and releases the host.</summary>
    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(30));
        host.Dispose();
    }
}
