using System.Collections;
using System.Runtime.CompilerServices;
using static TorchSharp.torch;

namespace RapidFire.Actors.Data;

/// <summary>The tensors inside a collated minibatch: a tensor, or dictionaries, lists, arrays and tuples of them.</summary>
public static class TensorTree
{
    /// <summary>Every tensor reachable from <paramref name="value"/>.</summary>
    public static IEnumerable<Tensor> Tensors(object? value)
    {
        switch (value)
        {
            case Tensor t:
                yield return t;
                break;
            case IDictionary map:
                foreach (var item in map.Values)
                    foreach (var t in Tensors(item)) yield return t;
                break;
            case ITuple tuple:
                for (var i = 0; i < tuple.Length; i++)
                    foreach (var t in Tensors(tuple[i])) yield return t;
                break;
            case IEnumerable items and not string:
                foreach (var item in items)
                    foreach (var t in Tensors(item)) yield return t;
                break;
        }
    }

    /// <summary>
    /// The same structure with every tensor replaced by <paramref name="map"/>'s result (dictionaries become
    /// <c>Dictionary&lt;string, object&gt;</c>, tuples and arrays <c>object[]</c>, other lists <c>List&lt;object&gt;</c>).
    /// </summary>
    public static object Map(object value, Func<Tensor, Tensor> map) => value switch
    {
        Tensor t => map(t),
        IDictionary d => d.Keys.Cast<object>().ToDictionary(k => (string)k, k => Map(d[k]!, map)),
        ITuple tuple => Enumerable.Range(0, tuple.Length).Select(i => Map(tuple[i]!, map)).ToArray(),
        Array array => array.Cast<object>().Select(item => Map(item, map)).ToArray(),
        IList list => list.Cast<object>().Select(item => Map(item, map)).ToList(),
        _ => value,
    };

    /// <summary>Disposes every tensor reachable from <paramref name="value"/>.</summary>
    public static void Dispose(object? value)
    {
        foreach (var t in Tensors(value)) t.Dispose();
    }
}
