using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec;

/// <summary>Reads model checkpoints found under a data handle's <c>models</c> locator.</summary>
public static class ModelFiles
{
    /// <summary>
    /// Loads the state dictionary stored under <paramref name="modelTag"/> in <paramref name="modelsDirectory"/>.
    /// Errors (a <see cref="SpecException"/> of <c>LoadModel</c>) name the tag and the locator.
    /// </summary>
    public static IReadOnlyDictionary<string, Tensor> Load(string modelTag, string? modelsDirectory)
    {
        if (modelsDirectory is null)
            throw new SpecException("LoadModel", $"model tag '{modelTag}': the data handle has no 'models' locator");
        var root = Path.GetFullPath(modelsDirectory);
        var path = Path.GetFullPath(Path.Combine(root, modelTag));
        if (!path.StartsWith(Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new SpecException("LoadModel", $"model tag '{modelTag}' escapes the models locator {root}");
        if (!File.Exists(path))
            throw new SpecException("LoadModel", $"model tag '{modelTag}' not found in the models locator {root}");
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".dat" => ReadTorchSharpStateDict(path, modelTag),
            var ext => throw new SpecException("LoadModel",
                $"model tag '{modelTag}': cannot read '{ext}' files; save the model with TorchSharp's Module.save (.dat)"),
        };
    }

    /// <summary>Reads the format <c>Module.save</c> writes: an entry count, then (name, tensor) pairs.</summary>
    private static Dictionary<string, Tensor> ReadTorchSharpStateDict(string path, string modelTag)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            var count = ReadLeb128(reader);
            var result = new Dictionary<string, Tensor>((int)count);
            for (var i = 0; i < count; i++)
            {
                var name = reader.ReadString();
                result[name] = TensorExtensionMethods.Load(reader);
            }
            return result;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or InvalidCastException)
        {
            throw new SpecException("LoadModel", $"model tag '{modelTag}' ({path}) is not a TorchSharp state dict: {e.Message}", e);
        }
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
        throw new InvalidCastException("malformed entry count");
    }
}
