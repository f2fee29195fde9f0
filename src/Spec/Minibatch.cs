using System.Collections;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace RapidFire.Spec;

/// <summary>
/// One collated minibatch, as <see cref="MLSpec.ComputeForward"/> and <see cref="MLSpec.ComputeMetrics"/> get it:
/// the value <see cref="MLSpec.CollateFn"/> returned, with typed access to its members.
/// </summary>
/// <remarks>
/// With the default collate a minibatch of dictionaries is a <c>Dictionary&lt;string, object&gt;</c> of stacked
/// tensors (read them with <c>minibatch["images"]</c>), a minibatch of lists or tuples is a list of stacked
/// tensors (<c>minibatch[0]</c>), and a minibatch of tensors is one tensor (<see cref="Tensor"/>). A custom
/// <c>CollateFn</c> may return anything; read it back with <see cref="Value"/> or <see cref="Get{T}(string)"/>.
/// </remarks>
public sealed class Minibatch
{
    /// <summary>Wraps a collated value of <paramref name="size"/> examples.</summary>
    public Minibatch(object value, int size)
    {
        Value = value ?? throw new SpecException("CollateFn", "returned null");
        Size = size;
    }

    /// <summary>The number of examples (rows of the ESF) collated into this minibatch.</summary>
    public int Size { get; }

    /// <summary>The collated value itself.</summary>
    public object Value { get; }

    /// <summary>The keys when the minibatch is a dictionary, else empty.</summary>
    public IReadOnlyList<string> Keys => Value is IDictionary d ? d.Keys.Cast<object>().Select(k => k.ToString()!).ToList() : [];

    /// <summary>The tensor under <paramref name="key"/>; an unknown key or a non-tensor value is an error naming it.</summary>
    public Tensor this[string key] => Get<Tensor>(key);

    /// <summary>The tensor at <paramref name="index"/> of a list or tuple minibatch.</summary>
    public Tensor this[int index] => Get<Tensor>(index);

    /// <summary>The single tensor of a minibatch of tensors.</summary>
    public Tensor Tensor => Value as Tensor
        ?? throw new SpecException("ComputeForward", $"the minibatch is a {Value.GetType().Name}, not a single tensor");

    /// <summary>The member under <paramref name="key"/> as <typeparamref name="T"/>.</summary>
    public T Get<T>(string key)
    {
        if (Value is not IDictionary map)
            throw new SpecException("ComputeForward", $"minibatch[\"{key}\"]: the minibatch is a {Value.GetType().Name}, not a dictionary");
        if (!map.Contains(key))
            throw new SpecException("ComputeForward", $"minibatch has no key '{key}'; its keys are: {string.Join(", ", Keys)}");
        return map[key] is T value
            ? value
            : throw new SpecException("ComputeForward", $"minibatch[\"{key}\"] is a {map[key]?.GetType().Name ?? "null"}, not a {typeof(T).Name}");
    }

    /// <summary>The member at <paramref name="index"/> of a list or tuple minibatch as <typeparamref name="T"/>.</summary>
    public T Get<T>(int index)
    {
        var item = Value switch
        {
            IList list when index >= 0 && index < list.Count => list[index],
            ITuple tuple when index >= 0 && index < tuple.Length => tuple[index],
            IList or ITuple => throw new SpecException("ComputeForward", $"minibatch[{index}] is out of range"),
            _ => throw new SpecException("ComputeForward", $"minibatch[{index}]: the minibatch is a {Value.GetType().Name}, not a list or tuple"),
        };
        return item is T value
            ? value
            : throw new SpecException("ComputeForward", $"minibatch[{index}] is a {item?.GetType().Name ?? "null"}, not a {typeof(T).Name}");
    }
}
