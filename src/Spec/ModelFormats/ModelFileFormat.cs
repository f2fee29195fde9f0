using System.Buffers.Binary;

namespace RapidFire.Spec.ModelFormats;

/// <summary>The kinds of model file <c>LoadModel</c> reads, and what the first bytes of a file say it is.</summary>
internal enum ModelFileFormat
{
    /// <summary>What TorchSharp's <c>Module.save</c> writes (<c>.dat</c>); it has no magic bytes.</summary>
    TorchSharp,

    /// <summary>A RapidFire checkpoint (<c>.ckpt</c>): starts with "RFCK".</summary>
    RapidFireCheckpoint,

    /// <summary>PyTorch's <c>torch.save</c> since 1.6 (<c>.pt</c>, <c>.pth</c>, <c>.bin</c>): a zip archive.</summary>
    PyTorch,

    /// <summary>safetensors: a little-endian 64-bit header length, then a JSON object.</summary>
    Safetensors,
}

/// <summary>Chooses a model file's reader by extension and checks the choice against the file's first bytes.</summary>
internal static class ModelFileFormats
{
    /// <summary>How many leading bytes <see cref="Mismatch"/> looks at.</summary>
    public const int SniffLength = 9;

    /// <summary>The extensions <c>LoadModel</c> reads, each with its format, as the error for another extension lists them.</summary>
    public static IReadOnlyList<(string Extension, ModelFileFormat Format, string Description)> Supported { get; } =
    [
        (".ckpt", ModelFileFormat.RapidFireCheckpoint, "a RapidFire checkpoint"),
        (".dat", ModelFileFormat.TorchSharp, "TorchSharp's Module.save"),
        (".pt", ModelFileFormat.PyTorch, "PyTorch's torch.save of a state dict"),
        (".pth", ModelFileFormat.PyTorch, "PyTorch's torch.save of a state dict"),
        (".bin", ModelFileFormat.PyTorch, "PyTorch's torch.save of a state dict"),
        (".safetensors", ModelFileFormat.Safetensors, "safetensors"),
    ];

    /// <summary>The supported extensions as one line: <c>.ckpt (a RapidFire checkpoint), .dat (...), ...</c>.</summary>
    public static string SupportedList => string.Join(", ", Supported.Select(s => $"{s.Extension} ({s.Description})"));

    /// <summary>The format of a file with extension <paramref name="extension"/> (with its dot), if supported.</summary>
    public static ModelFileFormat? ForExtension(string extension)
    {
        foreach (var (ext, format, _) in Supported)
            if (string.Equals(ext, extension, StringComparison.OrdinalIgnoreCase))
                return format;
        return null;
    }

    /// <summary>
    /// Checks the first bytes of a file to be read as <paramref name="format"/>: the problem, when they say it is
    /// something else (naming it, and the extension to give it where it is a supported format), else null.
    /// </summary>
    public static string? Mismatch(ModelFileFormat format, ReadOnlySpan<byte> head)
    {
        var (sniffed, what) = Describe(head);
        if (sniffed == format) return null;
        if (sniffed is { } other)
            return $"it is {what}; give it the extension {Supported.First(s => s.Format == other).Extension}";
        if (what.Length > 0)
            return format == ModelFileFormat.PyTorch
                ? $"it is {what}; load it in PyTorch and save it again with torch.save(model.state_dict(), path)"
                : $"it is {what}";
        return format switch
        {
            ModelFileFormat.PyTorch => "it is not a zip archive, the format of torch.save since PyTorch 1.6",
            ModelFileFormat.Safetensors => "it does not start with a safetensors header (an 8-byte length, then a JSON object)",
            _ => null, // a TorchSharp file has no magic; a checkpoint's reader names a bad magic itself
        };
    }

    private static (ModelFileFormat? Format, string What) Describe(ReadOnlySpan<byte> head)
    {
        if (head.Length >= 4 && head[..4].SequenceEqual("RFCK"u8))
            return (ModelFileFormat.RapidFireCheckpoint, "a RapidFire checkpoint (it starts with \"RFCK\")");
        if (head.Length >= 4 && head[..4].SequenceEqual("PK\u0003\u0004"u8))
            return (ModelFileFormat.PyTorch, "a zip archive, as PyTorch's torch.save writes");
        if (head.Length >= 9 && head[8] == (byte)'{' && BinaryPrimitives.ReadUInt64LittleEndian(head) < int.MaxValue)
            return (ModelFileFormat.Safetensors, "a safetensors file");
        if (head.Length >= 2 && head[0] == 0x80 && head[1] <= 5)
            return (null, "a Python pickle, as PyTorch's torch.save wrote before version 1.6 (its legacy format)");
        return (null, "");
    }
}
