using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using RapidFire.Actors;
using RapidFire.Actors.Cluster;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Storage;
using RapidFire.Actors.Training;
using RapidFire.Host.Configuration;
using RapidFire.Spec;
using RapidFire.Spec.Data.S3;
using RapidFire.Spec.Native;

namespace RapidFire.Host.Hosting;

/// <summary>
/// RapidFire in a host app (an ASP.NET Core app, a worker service): <see cref="AddRapidFire"/> gives it an
/// <see cref="IExperimentFactory"/> to resolve from DI; <see cref="WithRapidFire"/> and <see cref="WithRapidFireWorker(AkkaConfigurationBuilder, string)"/>
/// make the app's own ActorSystem (Akka.Hosting's <c>AddAkka</c>) a RapidFire node that trains for the fits of a
/// cluster. RapidFire's own nodes (the CLI, <see cref="Experiment"/>) are built with the same extensions.
/// </summary>
/// <example>
/// <code>
/// builder.Services.AddRapidFire(o => o.Directory = "experiments");
/// // in a request handler or a BackgroundService:
/// using var experiment = factory.Create("mnist");
/// var result = await experiment.RunFitAsync(SpecSource.Of&lt;MnistSpec&gt;(), ConfigGroup.Load("configs.json"), DataHandle.Load("datahandle.json"));
/// </code>
/// </example>
public static class RapidFireHosting
{
    /// <summary>
    /// RapidFire's settings on this ActorSystem: <paramref name="settings"/> (the <c>rapidfire</c> section, Akka settings)
    /// over what the builder has, and RapidFire's <c>reference.conf</c> (serializers, dispatchers, defaults) under it.
    /// Loads libtorch (with the platform fix the design notes describe) and keeps enough thread-pool threads for the
    /// journal's blocking drivers.
    /// </summary>
    public static AkkaConfigurationBuilder WithRapidFire(this AkkaConfigurationBuilder builder, Akka.Configuration.Config? settings = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        TorchNative.UseLibTorch(settings?.GetString(TorchNative.LibTorchDirSetting, null));
        TorchNative.EnsureLoaded();
        ReserveThreadPool();
        builder.AddHocon(RuntimeSettings.Reference, HoconAddMode.Append);
        if (settings is not null) builder.AddHocon(settings, HoconAddMode.Prepend);
        return builder;
    }

    /// <summary>
    /// Makes this ActorSystem a worker node (cluster role <c>gpu</c>): it trains with <paramref name="devices"/>
    /// (<c>cpu</c>, <c>cpu:N</c>, <c>cuda</c>, <c>cuda:I,J</c>) for every fit of the cluster that asks, as
    /// <c>rapidfire worker</c> does. Call it after <see cref="WithRapidFire"/>, on a cluster node
    /// (<c>akka.actor.provider = cluster</c>, for example through Akka.Cluster.Hosting's <c>WithClustering</c>) of an
    /// ActorSystem named <c>rapidfire</c> with the role <c>gpu</c> and seed nodes. The cluster profile
    /// (<c>config/cluster.conf</c>) lies under the app's settings.
    /// </summary>
    /// <exception cref="ConfigException"><paramref name="devices"/> is malformed or names no device.</exception>
    public static AkkaConfigurationBuilder WithRapidFireWorker(this AkkaConfigurationBuilder builder, string devices) =>
        builder.WithRapidFireWorker(DeviceSpec.Parse(devices, Experiment.CudaDevices));

    /// <summary><see cref="WithRapidFireWorker(AkkaConfigurationBuilder, string)"/> with devices parsed already.</summary>
    public static AkkaConfigurationBuilder WithRapidFireWorker(this AkkaConfigurationBuilder builder, IReadOnlyList<DeviceSlot> slots)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (slots.Count == 0) throw new ConfigException("devices", "a worker needs at least one device");
        // under everything the app sets: the cluster profile's frame size (room for a run state's records), split-brain
        // resolver and failure detector, as `rapidfire worker` has them
        builder.AddHocon(RapidFireConfiguration.Profile("cluster"), HoconAddMode.Append);
        return builder.StartActors((system, registry) =>
        {
            if (!WorkerProtocol.IsClusterNode(system))
                throw new ConfigException("akka.actor.provider", "a RapidFire worker is a cluster node: set it to cluster (Akka.Cluster.Hosting's WithClustering sets it)");
            if (Akka.Cluster.Cluster.Get(system).Settings.SeedNodes.Count == 0)
                throw new ConfigException("akka.cluster.seed-nodes", "a worker joins a cluster: give the experiment's node address (it prints `cluster: akka.tcp://...`)");
            if (!system.Settings.Config.HasPath(RuntimeSettings.Section))
                throw new ConfigException("WithRapidFireWorker", "call WithRapidFire first: it adds RapidFire's settings to the ActorSystem");
            var storage = StorageSettings.From(system.Settings.Config);
            var data = new S3DataStorage(storage.S3, progress: null);
            system.RegisterOnTermination(data.Dispose);
            var self = Akka.Cluster.Cluster.Get(system).SelfAddress;
            var worker = system.ActorOf(WorkerActor.Props($"{self.Host}:{self.Port}", slots,
                location => new TrainingServices.Storage(ExperimentStorage.CheckpointsAt(location, data, storage), data)), WorkerProtocol.WorkerName);
            registry.Register<WorkerActor>(worker);
        });
    }

    /// <summary>
    /// Registers an <see cref="IExperimentFactory"/> (a singleton) that creates, resumes and opens experiments in
    /// <see cref="RapidFireOptions.Directory"/> with <see cref="RapidFireOptions.Settings"/>. Every experiment it
    /// opened and did not see ended is released (not ended: it can be resumed) when the app's services are disposed.
    /// </summary>
    public static IServiceCollection AddRapidFire(this IServiceCollection services, Action<RapidFireOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new RapidFireOptions();
        configure?.Invoke(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton<IExperimentFactory, ExperimentFactory>();
        return services;
    }

    /// <summary>
    /// The journal's database drivers (SQLite, Npgsql through linq2db) block thread-pool threads on disk and network
    /// I/O. On a 2-core machine the pool starts with 2 threads and adds more slowly, so a blocked pool delays every
    /// actor message, the trainer's included. Keeping a few more threads ready costs idle threads only.
    /// </summary>
    private static void ReserveThreadPool()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        var wanted = Math.Max(16, 4 * Environment.ProcessorCount);
        if (workers < wanted) ThreadPool.SetMinThreads(wanted, Math.Max(io, wanted));
    }
}

/// <summary>What <see cref="RapidFireHosting.AddRapidFire"/>'s experiments are opened with.</summary>
public sealed class RapidFireOptions
{
    /// <summary>The experiments directory (created when missing); <see cref="Experiment.DefaultDirectory"/> by default.</summary>
    public string Directory { get; set; } = Experiment.DefaultDirectory;

    /// <summary>
    /// HOCON over the runtime defaults (the <c>rapidfire</c> section: journal, checkpoints, s3...; Akka settings), for
    /// example <c>RapidFireConfiguration.Load(["postgres"])</c>; null for the defaults.
    /// </summary>
    public Akka.Configuration.Config? Settings { get; set; }
}

/// <summary>
/// Opens experiments for a host app: each runs in an ActorSystem of its own, built by the same bootstrap as the host's
/// (its journal is a database in its folder, or its own rows of a shared one). One experiment is active per process.
/// </summary>
public interface IExperimentFactory
{
    /// <summary>A new experiment (<see cref="Experiment(string, string, Akka.Configuration.Config?)"/>).</summary>
    Experiment Create(string name);

    /// <summary>An existing experiment, to continue an interrupted fit (<see cref="Experiment.Resume"/>).</summary>
    Experiment Resume(string name);

    /// <summary>An existing experiment, to look at it (<see cref="Experiment.Open"/>).</summary>
    Experiment Open(string name);
}

internal sealed class ExperimentFactory(RapidFireOptions options) : IExperimentFactory, IDisposable
{
    private readonly List<Experiment> opened = [];

    public Experiment Create(string name) => Track(new Experiment(name, options.Directory, options.Settings));

    public Experiment Resume(string name) => Track(Experiment.Resume(name, options.Directory, options.Settings));

    public Experiment Open(string name) => Track(Experiment.Open(name, options.Directory, options.Settings));

    private Experiment Track(Experiment experiment)
    {
        lock (opened)
        {
            opened.RemoveAll(e => e.IsClosed);
            opened.Add(experiment);
        }
        return experiment;
    }

    public void Dispose()
    {
        lock (opened)
        {
            foreach (var experiment in opened) experiment.Dispose();
            opened.Clear();
        }
    }
}
