using RapidFire.Spec;
using RapidFire.Spec.Configs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RapidFire.Actors.Training;

/// <summary>
/// A run's trainable state: its model, optimizer and learning-rate scheduler. Between chunks it rests in host memory
/// (the CPU); a device swaps it in for a chunk and out again.
/// </summary>
public sealed class RunModel : IDisposable
{
    private RunModel(nn.Module model, optim.Optimizer optimizer, optim.lr_scheduler.LRScheduler? scheduler)
    {
        Model = model;
        Optimizer = optimizer;
        Scheduler = scheduler;
    }

    /// <summary>The model <c>CreateModel</c> returned.</summary>
    public nn.Module Model { get; }

    /// <summary>The config's optimizer over the model's parameters.</summary>
    public optim.Optimizer Optimizer { get; }

    /// <summary>The config's learning-rate scheduler, stepped once per epoch.</summary>
    public optim.lr_scheduler.LRScheduler? Scheduler { get; }

    /// <summary>The device the state is on now.</summary>
    public string Device { get; private set; } = "cpu";

    /// <summary>
    /// When this state was last as good as a checkpoint (<see cref="System.Diagnostics.Stopwatch"/> ticks): when it was
    /// created or restored, or last captured for one. The <c>time</c> save strategy checkpoints again once
    /// <c>checkpoint-interval</c> has passed since.
    /// </summary>
    public long CheckpointedAt { get; set; } = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>
    /// Creates a run's state: the weights are initialized under <paramref name="seed"/>, so the same config and seed
    /// give the same model wherever and whenever it is created.
    /// </summary>
    public static RunModel Create(MLSpec spec, Config cfg, long seed)
    {
        nn.Module model;
        lock (TorchRandom.Lock)
        {
            torch.manual_seed(seed);
            model = SpecCall.Run("CreateModel", () => spec.CreateModel(cfg)
                ?? throw new SpecException("CreateModel", "returned null"));
        }
        var optimizer = SpecCall.Run("optimizer", () => Optimizers.Create(cfg.Optimizer, model.parameters(), Config.OptimizerKey));
        var scheduler = cfg.LrScheduler is { } s
            ? SpecCall.Run("lr_scheduler", () => LrSchedulers.Create(s, optimizer, Config.LrSchedulerKey))
            : null;
        return new RunModel(model, optimizer, scheduler);
    }

    /// <summary>Moves the model and the optimizer state to <paramref name="device"/> (no-op when already there).</summary>
    public void MoveTo(string device)
    {
        if (device == Device) return;
        var target = torch.device(device);
        Model.to(target);
        if (Optimizer is OptimizerHelper helper) helper.to(target);
        Device = device;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Optimizer.Dispose();
        Model.Dispose();
    }
}

/// <summary>The lock around the process-wide CPU generator while a run seeds it and draws from it for weight init.</summary>
public static class TorchRandom
{
    /// <summary>Held while seeding and creating a model.</summary>
    public static readonly object Lock = new();
}

/// <summary>
/// The runs' states in host memory, each with the number of chunks it has trained. A device checks a run's state out
/// for a task and in again after it; the scheduler never gives one run to two devices at once, and a second check-out
/// is a bug that throws. On a cluster node a resting state may be stale (the run trained elsewhere since): a
/// check-out that expects another position drops it.
/// </summary>
public sealed class RunModelCache : IDisposable
{
    private readonly Dictionary<int, RunModel> resting = [];
    private readonly Dictionary<int, int> positions = [];
    private readonly HashSet<int> checkedOut = [];

    /// <summary>
    /// Takes a run's state when it rests here having trained <paramref name="position"/> chunks (null: wherever it
    /// stands), else creates it with <paramref name="create"/> (a stale resting state is disposed first).
    /// </summary>
    public RunModel CheckOut(int runId, int? position, Func<RunModel> create)
    {
        lock (resting)
        {
            if (!checkedOut.Add(runId))
                throw new InvalidOperationException($"run {runId}'s model is already checked out by a device");
            if (resting.Remove(runId, out var model))
            {
                if (position is null || positions.GetValueOrDefault(runId) == position) return model;
                model.Dispose();
            }
        }
        try
        {
            return create();
        }
        catch
        {
            lock (resting) checkedOut.Remove(runId);
            throw;
        }
    }

    /// <summary>Returns a run's state after a task, having trained <paramref name="position"/> chunks.</summary>
    public void CheckIn(int runId, RunModel model, int position)
    {
        lock (resting)
        {
            checkedOut.Remove(runId);
            resting[runId] = model;
            positions[runId] = position;
        }
    }

    /// <summary>
    /// A copy of a resting run's model weights (the state dict, cloned to the CPU), or null when the run has no
    /// resting state. The copy is the caller's to dispose.
    /// </summary>
    public Dictionary<string, Tensor>? CopyWeights(int runId)
    {
        lock (resting)
        {
            if (!resting.TryGetValue(runId, out var model)) return null;
            using var _ = torch.no_grad();
            return model.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone());
        }
    }

    /// <summary>Whether a run's state rests in host memory (not checked out, not released).</summary>
    public bool IsResting(int runId)
    {
        lock (resting) return resting.ContainsKey(runId);
    }

    /// <summary>
    /// The checkpoint payload of a resting run's state (see <see cref="Checkpoints.RunStateCodec.Capture"/>), or null when
    /// the run's state is not in host memory. The run stays resting.
    /// </summary>
    public byte[]? Capture(int runId)
    {
        lock (resting)
            return resting.TryGetValue(runId, out var model) ? Checkpoints.RunStateCodec.Capture(model) : null;
    }

    /// <summary>Releases a run's state (the run ended, or its task failed and the state is suspect).</summary>
    public void Release(int runId, RunModel? model = null)
    {
        lock (resting)
        {
            checkedOut.Remove(runId);
            if (resting.Remove(runId, out var rested)) rested.Dispose();
        }
        model?.Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (resting)
        {
            foreach (var model in resting.Values) model.Dispose();
            resting.Clear();
        }
    }
}
