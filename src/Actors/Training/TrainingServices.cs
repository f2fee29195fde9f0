using System.Collections.Concurrent;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Data;
using RapidFire.Spec;
using RapidFire.Spec.Data;

namespace RapidFire.Actors.Training;

/// <summary>
/// What the actors of one node share for a fit, none of it mutable through messages: the user's spec, the data
/// handle's partitions (opened once, read-only), one MLSpec instance per (run, mode), the runs' model states in host
/// memory (checked out by one device at a time), and the hand-off of prepared minibatches.
/// </summary>
public sealed class TrainingServices : IDisposable
{
    private readonly ConcurrentDictionary<Mode, Lazy<EsfTable>> partitions = new();
    private readonly Lazy<string> miscPath;

    /// <summary>
    /// Where a fit keeps what outlives it, the checkpoint store (none: nothing is checkpointed), and where it reads its
    /// data from (null: <see cref="DataStorage.Default"/>, local files only; an <c>S3DataStorage</c> reads S3 locators too).
    /// </summary>
    public sealed record Storage(ICheckpointStore? Checkpoints, IDataStorage? Data = null)
    {
        /// <summary>No checkpoints: runs cannot be resumed after the process ends.</summary>
        public static Storage None { get; } = new((ICheckpointStore?)null);
    }

    /// <summary>Services for a fit of the spec made by <paramref name="specFactory"/> over <paramref name="data"/>.</summary>
    public TrainingServices(Func<MLSpec> specFactory, DataHandle data, RuntimeSettings settings, Storage? storage = null)
    {
        Data = data;
        Settings = settings;
        Checkpoints = settings.SaveStrategy == "none" ? null : storage?.Checkpoints;
        DataStorage = storage?.Data ?? Spec.Data.DataStorage.Default;
        miscPath = new Lazy<string>(() => data.GetMiscPath(DataStorage) ?? "");
        var context = new SpecContext(data.Models, DataStorage);
        Prepared = new PreparedExamples(settings.CachesPreparedExamples, settings.PrepCacheBytes);
        Specs = new SpecInstances(() =>
        {
            var spec = specFactory();
            spec.Context = context;
            return spec;
        }, () => miscPath.Value, Prepared.ReadsOf);
    }

    /// <summary>The data handle.</summary>
    public DataHandle Data { get; }

    /// <summary>Where the data handle's files are read from (ESFs, object files, misc and models).</summary>
    public IDataStorage DataStorage { get; }

    /// <summary>The runtime settings of this fit.</summary>
    public RuntimeSettings Settings { get; }

    /// <summary>One MLSpec instance per (run, mode), each initialized once.</summary>
    public SpecInstances Specs { get; }

    /// <summary>The runs' models, optimizers and schedulers, in host memory between chunks.</summary>
    public RunModelCache Models { get; } = new();

    /// <summary>What <c>RowPrep</c> returned, kept for later epochs and other runs (see <see cref="PreparedExamples"/>).</summary>
    public PreparedExamples Prepared { get; }

    /// <summary>Prepared minibatches waiting for their device.</summary>
    public MinibatchExchange Exchange { get; } = new();

    /// <summary>The checkpoint store, when runs are checkpointed.</summary>
    public ICheckpointStore? Checkpoints { get; }

    /// <summary>
    /// Checkpoints captured in host memory (by a device after a chunk, by the fit for a warm clone), waiting for their
    /// run (or, on a worker node, its <see cref="Cluster.WorkerFit"/>) to write them durably before the chunk is journaled.
    /// </summary>
    public HandOff<CheckpointRef, byte[]> PendingCheckpoints { get; } = new("the captured state of");

    /// <summary>
    /// The trained state each warm clone starts from, copied by the fit from its parent, until a device creates the
    /// clone's model (it is also written to the checkpoint store, for a resume). By the clone's run id.
    /// </summary>
    public HandOff<int, Checkpoint> WarmStarts { get; } = new("the warm start of run");

    /// <summary>
    /// The followers' replicas of tasks spread over several devices, by (group, shard 1..): the leading device makes
    /// them, each follower takes its own and releases it when the task ends.
    /// </summary>
    public HandOff<(GpuProtocol.ShardGroup Group, int Shard), RunModel> Replicas { get; } = new("the replica", r => r.Dispose());

    /// <summary>
    /// The leader's state of each task spread over several devices, by group: written and removed by the leading device
    /// only, read by its followers when the task ends, to compare their replicas with it.
    /// </summary>
    public ConcurrentDictionary<GpuProtocol.ShardGroup, RunModel> Leaders { get; } = new();

    /// <summary>Whether the data handle has <paramref name="mode"/>'s partition.</summary>
    public bool HasPartition(Mode mode) => Data.HasPartition(mode);

    /// <summary>The partition's rows, opened and checked once per fit.</summary>
    public EsfTable Partition(Mode mode) =>
        partitions.GetOrAdd(mode, m => new Lazy<EsfTable>(() => Data.Open(m, DataStorage))).Value;

    /// <summary>The seed of a run: its <c>seed</c> knob, else the fit's seed.</summary>
    public long SeedOf(Config cfg) => cfg.Get("seed", Settings.Seed);

    /// <summary>Releases every model state and prepared minibatch.</summary>
    public void Dispose()
    {
        Models.Dispose();
        Replicas.Dispose();
        Leaders.Clear();
        Exchange.Dispose();
        Prepared.Dispose();
    }
}
