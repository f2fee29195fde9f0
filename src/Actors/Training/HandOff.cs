using System.Collections.Concurrent;

namespace RapidFire.Actors.Training;

/// <summary>
/// Where one kind of data in flight waits between the actor that made it and the one that uses it, on one node:
/// messages carry only its key (tensors and large buffers never travel in messages). <see cref="Put"/> leaves an
/// entry once per key and returns the key as its handle; <see cref="Take"/> consumes it, so each entry has exactly
/// one owner at a time: the hand-off, then its taker. An entry nobody will take is <see cref="Discard"/>ed (and
/// released, when it holds native memory). <see cref="Count"/> says what still waits: after a fit, nothing should.
/// </summary>
/// <typeparam name="TKey">What names an entry: a checkpoint, a run, a shard of a task.</typeparam>
/// <typeparam name="TValue">What waits.</typeparam>
/// <param name="what">What an entry is, for errors (<c>checkpoint</c>, <c>warm start</c>...).</param>
/// <param name="release">Frees an entry that is discarded or left at <see cref="Dispose"/> (null: nothing to free).</param>
public sealed class HandOff<TKey, TValue>(string what, Action<TValue>? release = null) : IDisposable where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, TValue> waiting = new();

    /// <summary>Leaves <paramref name="value"/> under <paramref name="key"/>; a key still waiting is an error.</summary>
    public TKey Put(TKey key, TValue value) =>
        waiting.TryAdd(key, value) ? key : throw new InvalidOperationException($"{what} {key} was handed off twice");

    /// <summary>Takes the entry under <paramref name="key"/>; the caller owns it from now on. A missing one is an error.</summary>
    public TValue Take(TKey key) =>
        waiting.TryRemove(key, out var value) ? value : throw new InvalidOperationException($"{what} {key} is not waiting");

    /// <summary>Takes the entry under <paramref name="key"/> when it is there (whoever put it may have given up on it since).</summary>
    public bool TryTake(TKey key, out TValue value) => waiting.TryRemove(key, out value!);

    /// <summary>Drops the entry under <paramref name="key"/>, if any, and releases it.</summary>
    public void Discard(TKey key)
    {
        if (waiting.TryRemove(key, out var value)) release?.Invoke(value);
    }

    /// <summary>How many entries wait now.</summary>
    public int Count => waiting.Count;

    /// <summary>Releases every entry still waiting.</summary>
    public void Dispose()
    {
        foreach (var key in waiting.Keys) Discard(key);
    }
}
