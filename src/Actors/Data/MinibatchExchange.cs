using System.Collections.Concurrent;
using RapidFire.Actors.Training;
using RapidFire.Spec;

namespace RapidFire.Actors.Data;

/// <summary>
/// Names one prepared minibatch: the device that asked for it, its task's serial number, its index in the task, and
/// which of its shards it is when the task runs on several devices (0 otherwise).
/// </summary>
public sealed record MinibatchKey(string DeviceId, long TaskSerial, int Index, int Shard = 0);

/// <summary>A collated minibatch with the ids of its rows; its tensors belong to whoever takes it.</summary>
public sealed record PreparedMinibatch(Minibatch Batch, long[] Ids);

/// <summary>
/// Where DataLoaderActors leave prepared minibatches for their device: messages carry only the
/// <see cref="MinibatchKey"/>, never tensors. The device takes each minibatch exactly once; what nobody takes
/// (a cancelled task) is discarded, and its tensors are disposed.
/// </summary>
public sealed class MinibatchExchange : IDisposable
{
    private readonly HandOff<MinibatchKey, PreparedMinibatch> waiting = new("minibatch", m => TensorTree.Dispose(m.Batch.Value));
    private readonly ConcurrentDictionary<string, int> waitingByDevice = new();
    private readonly ConcurrentDictionary<string, int> peakByDevice = new();

    /// <summary>Leaves a prepared minibatch for its device.</summary>
    public void Put(MinibatchKey key, PreparedMinibatch minibatch)
    {
        waiting.Put(key, minibatch);
        var count = waitingByDevice.AddOrUpdate(key.DeviceId, 1, (_, n) => n + 1);
        peakByDevice.AddOrUpdate(key.DeviceId, count, (_, peak) => Math.Max(peak, count));
    }

    /// <summary>Takes a prepared minibatch; the caller owns (and disposes) its tensors.</summary>
    public PreparedMinibatch Take(MinibatchKey key)
    {
        var minibatch = waiting.TryTake(key, out var taken) ? taken : throw new InvalidOperationException($"minibatch {key} is not ready");
        Left(key);
        return minibatch;
    }

    /// <summary>Takes a prepared minibatch when it is still there (its task may have ended since it was asked for).</summary>
    public PreparedMinibatch? TryTake(MinibatchKey key)
    {
        if (!waiting.TryTake(key, out var minibatch)) return null;
        Left(key);
        return minibatch;
    }

    /// <summary>Drops a prepared minibatch nobody will take, disposing its tensors.</summary>
    public void Discard(MinibatchKey key)
    {
        if (!waiting.TryTake(key, out var minibatch)) return;
        Left(key);
        TensorTree.Dispose(minibatch.Batch.Value);
    }

    /// <summary>The most minibatches that waited at once for <paramref name="deviceId"/>: the prefetch bound at work.</summary>
    public int PeakWaiting(string deviceId) => peakByDevice.GetValueOrDefault(deviceId);

    /// <summary>How many minibatches wait now.</summary>
    public int Count => waiting.Count;

    /// <inheritdoc />
    public void Dispose() => waiting.Dispose();

    private void Left(MinibatchKey key) => waitingByDevice.AddOrUpdate(key.DeviceId, 0, (_, n) => n - 1);
}
