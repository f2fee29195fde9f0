using Akka.Configuration;

namespace RapidFire.Actors;

/// <summary>
/// The runtime's settings, read from the <c>rapidfire</c> section of the actor system's HOCON (defaults in the
/// embedded <c>reference.conf</c>); the CLI and the Experiment API override them per fit.
/// </summary>
/// <param name="Chunks">Chunks per epoch: how often a run may hop between devices and be compared (fewer when an epoch has fewer minibatches).</param>
/// <param name="Devices">The <c>--devices</c> setting: <c>cpu</c>, <c>cpu:N</c>, <c>cuda</c> or <c>cuda:I,J</c>.</param>
/// <param name="Seed">The seed of every run without its own <c>seed</c> knob: weight init, data order, dropout.</param>
/// <param name="Prefetch">Minibatches each device has prepared or in preparation ahead of its trainer.</param>
/// <param name="Loaders">DataLoaderActors preparing minibatches (0: half the cores, at least one).</param>
/// <param name="TorchThreads">libtorch's intra-op threads, process-wide (0: the cores, shared among the CPU devices).</param>
/// <param name="SaveStrategy">
/// When runs are checkpointed: <c>time</c> (at every epoch's end, and after the first chunk that ends
/// <see cref="CheckpointInterval"/> or more after the run's last checkpoint), after every <c>chunk</c>, every
/// <c>epoch</c>, or <c>none</c>.
/// </param>
/// <param name="KeepCheckpoints">Chunk checkpoints kept per run besides every epoch's last and the final one.</param>
/// <param name="SnapshotEvery">A run's state is snapshotted every this many journal events.</param>
/// <param name="JournalIdPrefix">Prefix of the persistence ids (the experiment's name and a slash), so experiments can share a database.</param>
/// <param name="CheckReplicas">
/// Whether a task on several devices compares every replica with the leader's state when it ends (null: in Debug builds
/// only); a replica that differs fails the run.
/// </param>
/// <param name="Locality">
/// On a cluster, whether a run goes back to the node where its state rests when a device is free there (its state then
/// need not move through the checkpoint store); off, any free device. Fairness decides the order of the runs either way.
/// Null: on (and left out of the journaled settings).
/// </param>
/// <param name="CheckpointInterval">The <c>time</c> strategy's interval in seconds (null: 30).</param>
/// <param name="PrepCache">
/// Whether what <c>RowPrep</c> returns is kept and reused in later epochs and by runs that read the same knobs (see
/// <c>PreparedExamples</c>). Null: on. Results are the same either way, so it is a node's choice, left out of the
/// journaled settings unless off.
/// </param>
/// <param name="PrepCacheMaxBytes">The most bytes of prepared examples kept per node (null: a quarter of the memory the process may use).</param>
/// <param name="LoaderStallAfter">
/// Seconds after which a loader's MLSpec call (<c>RowPrep</c>, <c>CollateFn</c>) counts as stalled: it is reported and
/// its thread replaced, so the other runs go on (null: 5). A node's choice, left out of the journaled settings.
/// </param>
/// <param name="SpecCallTimeout">The most seconds one loader MLSpec call may run before it fails its run (null: no limit).</param>
public sealed record RuntimeSettings(int Chunks = 4, string Devices = "cpu", long Seed = 42, int Prefetch = 4,
    int Loaders = 0, int TorchThreads = 0, string SaveStrategy = "time", int KeepCheckpoints = 2, int SnapshotEvery = 100,
    string JournalIdPrefix = "", bool? CheckReplicas = null, bool? Locality = null, bool? PrepCache = null, long? PrepCacheMaxBytes = null,
    double? CheckpointInterval = null, double? LoaderStallAfter = null, double? SpecCallTimeout = null)
{
#if DEBUG
    private const bool DebugBuild = true;
#else
    private const bool DebugBuild = false;
#endif

    /// <summary>Whether runs go back to the node that holds their state (see <see cref="Locality"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool UsesLocality => Locality ?? true;

    /// <summary>Whether replicas are checked for divergence (see <see cref="CheckReplicas"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool ChecksReplicas => CheckReplicas ?? DebugBuild;

    /// <summary>The HOCON section the settings live in.</summary>
    public const string Section = "rapidfire";

    /// <summary>The embedded defaults (<c>reference.conf</c> of RapidFire.Actors).</summary>
    public static Config Reference { get; } = ConfigurationFactory.FromResource<RuntimeSettings>("RapidFire.Actors.reference.conf");

    /// <summary>Reads the <c>rapidfire</c> section, falling back to <see cref="Reference"/>.</summary>
    public static RuntimeSettings From(Config config)
    {
        var section = config.WithFallback(Reference).GetConfig(Section);
        return new RuntimeSettings(
            section.GetInt("chunks"), section.GetString("devices"), section.GetLong("seed"), section.GetInt("prefetch"),
            section.GetInt("loaders"), section.GetInt("torch-threads"), section.GetString("save-strategy"),
            section.GetInt("keep-checkpoints"), section.GetInt("snapshot-every"),
            CheckReplicas: section.GetString("check-replicas") switch
            {
                "auto" or "" => null,
                "on" or "true" or "yes" => true,
                "off" or "false" or "no" => false,
                var other => throw new Spec.ConfigException("check-replicas", $"must be auto, on or off, got '{other}'"),
            },
            Locality: section.GetBoolean("locality", true) ? null : false,
            PrepCache: section.GetBoolean("prep-cache", true) ? null : false,
            PrepCacheMaxBytes: section.GetByteSize("prep-cache-max-bytes") is > 0 and var max ? max : null,
            CheckpointInterval: section.GetTimeSpan("checkpoint-interval", TimeSpan.FromSeconds(30)) is var interval && interval != TimeSpan.FromSeconds(30)
                ? interval.TotalSeconds : null,
            LoaderStallAfter: section.GetTimeSpan("loader-stall-after", TimeSpan.FromSeconds(5)) is var stall && stall != TimeSpan.FromSeconds(5)
                ? stall.TotalSeconds : null,
            SpecCallTimeout: section.GetString("spec-call-timeout", "off") is "off" or "" or "0" or "0s"
                ? null : section.GetTimeSpan("spec-call-timeout").TotalSeconds).Validated();
    }

    /// <summary>
    /// The worker nodes a cluster fit waits for before it trains (<c>rapidfire.cluster.min-workers</c>; 0: it starts with
    /// whatever has joined). A setting of the coordinator's process, not of the fit: a resumed fit takes the resuming
    /// process's, so it is not journaled with the others.
    /// </summary>
    public static int MinWorkersOf(Config config)
    {
        var wait = config.WithFallback(Reference).GetInt($"{Section}.cluster.min-workers", 0);
        return wait >= 0 ? wait : throw new Spec.ConfigException("cluster.min-workers", $"must be >= 0, got {wait}");
    }

    /// <summary>The number of DataLoaderActors to start: by default half the cores prepare data, half compute.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int LoaderCount => Loaders > 0 ? Loaders : Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>The byte cap of the prepared-example cache (see <see cref="PrepCacheMaxBytes"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public long PrepCacheBytes => PrepCacheMaxBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4;

    /// <summary>The <c>time</c> save strategy's interval in seconds (see <see cref="CheckpointInterval"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public double CheckpointSeconds => CheckpointInterval ?? 30;

    /// <summary>When a loader's MLSpec call counts as stalled, in seconds (see <see cref="LoaderStallAfter"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public double LoaderStallSeconds => LoaderStallAfter ?? 5;

    /// <summary>Whether prepared examples are cached (see <see cref="PrepCache"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool CachesPreparedExamples => PrepCache ?? true;

    /// <summary>
    /// libtorch's intra-op threads for <paramref name="cpuDevices"/> CPU devices: the cores shared among them (all cores
    /// when every device is CUDA). The loaders do not get cores of their own: with the prepared-example cache they only
    /// gather after the first epoch. The count stays fixed for a fit, since it changes libtorch's reduction order and
    /// with it the last bits of the results: a resumed fit, or one with the cache off, must end bit-identical.
    /// </summary>
    public int TorchThreadsFor(int cpuDevices) => TorchThreads > 0 ? TorchThreads
        : Math.Max(1, Environment.ProcessorCount / Math.Max(1, cpuDevices));

    /// <summary>Checks the values; a bad one is a <see cref="Spec.ConfigException"/> naming the setting.</summary>
    public RuntimeSettings Validated()
    {
        var errors = new List<Spec.ConfigError>();
        if (Chunks < 1) errors.Add(new("chunks", $"must be a whole number >= 1, got {Chunks}"));
        if (Prefetch < 1) errors.Add(new("prefetch", $"must be a whole number >= 1, got {Prefetch}"));
        if (Loaders < 0) errors.Add(new("loaders", $"must be >= 0 (0: one per core), got {Loaders}"));
        if (TorchThreads < 0) errors.Add(new("torch-threads", $"must be >= 0 (0: automatic), got {TorchThreads}"));
        if (SaveStrategy is not ("time" or "chunk" or "epoch" or "none"))
            errors.Add(new("save-strategy", $"must be time, chunk, epoch or none, got '{SaveStrategy}'"));
        if (CheckpointInterval is <= 0) errors.Add(new("checkpoint-interval", $"must be a positive duration, got {CheckpointInterval} s"));
        if (LoaderStallAfter is <= 0) errors.Add(new("loader-stall-after", $"must be a positive duration, got {LoaderStallAfter} s"));
        if (SpecCallTimeout is <= 0) errors.Add(new("spec-call-timeout", $"must be a positive duration or off, got {SpecCallTimeout} s"));
        if (KeepCheckpoints < 1) errors.Add(new("keep-checkpoints", $"must be >= 1, got {KeepCheckpoints}"));
        if (PrepCacheMaxBytes < 0) errors.Add(new("prep-cache-max-bytes", $"must be > 0 (or 0 for a quarter of the memory), got {PrepCacheMaxBytes}"));
        if (SnapshotEvery < 1) errors.Add(new("snapshot-every", $"must be >= 1, got {SnapshotEvery}"));
        return errors.Count == 0 ? this : throw new Spec.ConfigException(errors);
    }
}
