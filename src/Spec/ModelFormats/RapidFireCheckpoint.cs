using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using static TorchSharp.torch;

namespace RapidFire.Spec.ModelFormats;

/// <summary>
/// Reads the model weights out of a RapidFire checkpoint (<c>.ckpt</c>), the file the runtime writes after a chunk.
/// </summary>
/// <remarks>
/// The layout is defined by <c>RapidFire.Actors.Checkpoints.CheckpointFile</c> (the file) and <c>RunStateCodec</c>
/// (its payload); the Spec library cannot see them, so this reader restates it, and the Actors tests read a
/// checkpoint written by the real writer through <c>LoadModel</c> to keep the two in step. Integers little-endian:
/// <code>
/// "RFCK", int32 version 1, int32 H, H bytes of JSON header, int64 P, 32 bytes SHA-256 (of header and payload), P bytes:
///   "RFRS", int32 version 1, int64 M, M bytes model state dict (TorchSharp's Module.save), int64 O, O bytes optimizer
/// </code>
/// Every length and the digest are checked before a tensor is read. The optimizer state is skipped.
/// </remarks>
internal static class RapidFireCheckpoint
{
    private const int DigestLength = 32;
    private const int PrefixLength = 12;

    /// <summary>Reads the model's state dict from the checkpoint in <paramref name="stream"/> (seekable, at 0).</summary>
    /// <exception cref="InvalidDataException">The file is not an intact checkpoint of this format version.</exception>
    public static Dictionary<string, Tensor> ReadModel(Stream stream)
    {
        var fileLength = stream.Length;
        Span<byte> prefix = stackalloc byte[PrefixLength];
        ReadExactly(stream, prefix, "the magic, format version and header length");
        if (!prefix[..4].SequenceEqual("RFCK"u8))
            throw new InvalidDataException($"bad magic {Convert.ToHexString(prefix[..4])}: not a RapidFire checkpoint");
        var version = BinaryPrimitives.ReadInt32LittleEndian(prefix[4..]);
        if (version != 1)
            throw new InvalidDataException($"checkpoint format version {version} is not supported (this build reads version 1)");
        var headerLength = BinaryPrimitives.ReadInt32LittleEndian(prefix[8..]);
        if (headerLength < 0 || PrefixLength + (long)headerLength + 8 + DigestLength > fileLength)
            throw new InvalidDataException($"truncated: {fileLength} bytes, too short for a {headerLength}-byte header");

        var header = new byte[headerLength];
        ReadExactly(stream, header, "the header");
        Span<byte> lengthAndDigest = stackalloc byte[8 + DigestLength];
        ReadExactly(stream, lengthAndDigest, "the payload length and SHA-256");
        var payloadLength = BinaryPrimitives.ReadInt64LittleEndian(lengthAndDigest);
        var payloadStart = stream.Position;
        if (payloadLength < 0 || payloadStart + payloadLength != fileLength)
            throw new InvalidDataException(
                $"its payload length {payloadLength} does not match the file: {fileLength - payloadStart} bytes follow the header");

        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            hash.AppendData(header);
            var buffer = new byte[1 << 20];
            int read;
            while ((read = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, read);
            var actual = hash.GetHashAndReset();
            if (!actual.AsSpan().SequenceEqual(lengthAndDigest[8..]))
                throw new InvalidDataException(
                    $"SHA-256 mismatch: stored {Convert.ToHexStringLower(lengthAndDigest[8..])}, content hashes to {Convert.ToHexStringLower(actual)}");
        }
        try
        {
            using var json = JsonDocument.Parse(header);
            if (json.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException("its header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"unreadable header: {e.Message}", e);
        }

        stream.Position = payloadStart;
        Span<byte> sectionPrefix = stackalloc byte[16];
        if (payloadLength < 16)
            throw new InvalidDataException($"its {payloadLength}-byte payload is too short for a run state");
        ReadExactly(stream, sectionPrefix, "the run state's magic, version and model length");
        if (!sectionPrefix[..4].SequenceEqual("RFRS"u8))
            throw new InvalidDataException("its payload is not a run state (no \"RFRS\" magic)");
        var payloadVersion = BinaryPrimitives.ReadInt32LittleEndian(sectionPrefix[4..]);
        if (payloadVersion != 1)
            throw new InvalidDataException($"run state version {payloadVersion} is not supported (this build reads version 1)");
        var modelLength = BinaryPrimitives.ReadInt64LittleEndian(sectionPrefix[8..]);
        if (modelLength < 0 || 16 + modelLength + 8 > payloadLength)
            throw new InvalidDataException($"its model state claims {modelLength} bytes, more than the payload holds");
        var model = TorchSharpStateDict.Read(stream, modelLength);
        Span<byte> optimizerLength = stackalloc byte[8];
        ReadExactly(stream, optimizerLength, "the optimizer state's length");
        if (16 + modelLength + 8 + BinaryPrimitives.ReadInt64LittleEndian(optimizerLength) != payloadLength)
        {
            foreach (var tensor in model.Values) tensor.Dispose();
            throw new InvalidDataException("its optimizer state does not end where its payload does");
        }
        return model;
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string what)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"truncated: the file ends inside {what}", e);
        }
    }
}
