using System.Collections;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace RapidFire.Spec.ModelFormats;

/// <summary>
/// Reads PyTorch's files through TorchSharp.PyBridge: <c>torch.save</c>'s zip archive of a state dict (<c>.pt</c>,
/// <c>.pth</c>, <c>.bin</c>) and safetensors.
/// </summary>
internal static class PyTorchStateDict
{
    /// <summary>The keys under which a <c>torch.save</c>d dictionary may hold the model's state dict.</summary>
    public static IReadOnlyList<string> NestedKeys { get; } = ["state_dict", "model_state_dict", "model"];

    /// <summary>
    /// Reads a <c>torch.save</c> archive (seekable, at 0): a state dict, or a dictionary holding one under one of
    /// <see cref="NestedKeys"/> (as in PyTorch's tutorial checkpoints).
    /// </summary>
    /// <exception cref="InvalidDataException">It is not such a file; the message says why.</exception>
    public static Dictionary<string, Tensor> ReadPickle(Stream stream)
    {
        Hashtable table;
        try
        {
            table = PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("non-contiguous", StringComparison.Ordinal))
        {
            throw new InvalidDataException(
                "a tensor in it is stored as a non-contiguous view (transposed or strided), which this reader does not support; " +
                "save {k: v.contiguous() for k, v in model.state_dict().items()} instead", e);
        }
        catch (InvalidCastException e)
        {
            throw new InvalidDataException(
                $"it does not hold a dictionary of tensors; save one with torch.save(model.state_dict(), path) ({e.Message})", e);
        }
        catch (NotImplementedException e)
        {
            // PyBridge throws this for content it cannot read (a whole pickled model, storages shared at an offset):
            // a file the user must save otherwise, reported like any unreadable model file.
            throw new InvalidDataException(e.Message, e);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"it is not a readable zip archive (is it truncated?): {e.Message}", e);
        }

        if (AsStateDict(table) is { } stateDict) return stateDict;
        foreach (var key in NestedKeys)
            if (table[key] is IDictionary nested && AsStateDict(nested) is { } found)
                return found;
        var keys = string.Join(", ", table.Keys.Cast<object>().Select(k => $"'{k}'").Order(StringComparer.Ordinal));
        throw new InvalidDataException(
            $"it holds a dictionary with the keys {keys}, not a state dict (every value a tensor), nor one under " +
            $"{string.Join(", ", NestedKeys.Select(k => $"'{k}'"))}; save one with torch.save(model.state_dict(), path)");
    }

    /// <summary>Reads a safetensors file (seekable, at 0).</summary>
    public static Dictionary<string, Tensor> ReadSafetensors(Stream stream)
    {
        try
        {
            return Safetensors.LoadStateDict(stream, leaveOpen: true);
        }
        catch (NotImplementedException e) // PyBridge's word for what it cannot read (a dtype it lacks, a tensor over 2 GB)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }

    private static Dictionary<string, Tensor>? AsStateDict(IDictionary table)
    {
        var result = new Dictionary<string, Tensor>(table.Count);
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string key || entry.Value is not Tensor tensor) return null;
            result[key] = tensor;
        }
        return result;
    }
}
