using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.ModelFormats;

/// <summary>
/// Reads the state dict format TorchSharp's <c>Module.save</c> writes: an entry count (LEB128), then for each entry
/// its name (a length-prefixed UTF-8 string) and its tensor (<c>TensorExtensionMethods.Save</c>'s format).
/// </summary>
internal static class TorchSharpStateDict
{
    /// <summary>
    /// Reads a state dict from <paramref name="stream"/> at its position; it must end exactly
    /// <paramref name="length"/> bytes later.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not such a state dict.</exception>
    public static Dictionary<string, Tensor> Read(Stream stream, long length)
    {
        var start = stream.Position;
        using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        var count = ReadLeb128(reader);
        if (count < 0 || count > length)
            throw new InvalidDataException($"its entry count {count} is impossible for {length} bytes");
        var result = new Dictionary<string, Tensor>((int)count);
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            if (!result.TryAdd(name, TensorExtensionMethods.Load(reader)))
                throw new InvalidDataException($"it holds the entry '{name}' twice");
        }
        var read = stream.Position - start;
        if (read != length)
            throw new InvalidDataException($"its {count} entries end after {read} bytes, but it has {length}");
        return result;
    }

    private static long ReadLeb128(BinaryReader reader)
    {
        long value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = reader.ReadByte();
            value |= (long)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw new InvalidDataException("its entry count is malformed");
    }
}
