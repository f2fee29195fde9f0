using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// The checkpoint file format, shared by every store (a local file and an S3 object hold the same bytes).
/// </summary>
/// <remarks>
/// Layout, integers little-endian:
/// <code>
/// offset      size  field
/// 0           4     magic: the ASCII bytes "RFCK"
/// 4           4     int32 format version, 1
/// 8           4     int32 H, the header's length in bytes
/// 12          H     header: UTF-8 JSON of <see cref="CheckpointHeader"/>, camelCase:
///                   {"runId":3,"epoch":1,"chunk":0,"seed":42,"schedulerSteps":1,"createdUtc":"...","state":"..."}
/// 12+H        8     int64 P, the payload's length in bytes
/// 20+H        32    SHA-256 of the H header bytes followed by the P payload bytes
/// 52+H        P     payload (see <see cref="RunStateCodec"/>)
/// </code>
/// The file ends right after the payload. The digest covers the header as well as the payload, so a flipped bit in
/// the run state JSON is caught as surely as one in the weights. On read every field is checked: a wrong magic, an
/// unknown version, a length that runs past the end (a truncated file) or leaves bytes over, a digest mismatch, or a
/// header that does not parse is a <see cref="CheckpointCorruptException"/> naming the file and the fault.
/// A reader accepts unknown header members, so later versions may add some without a version bump.
/// <c>LoadModel</c> reads this layout too (RapidFire.Spec's <c>ModelFormats.RapidFireCheckpoint</c>, which cannot see this
/// library): a change here must be made there, and <c>LoadModelScenarioTests</c> reads a checkpoint this writer wrote.
/// </remarks>
public static class CheckpointFile
{
    /// <summary>The first four bytes of every checkpoint: "RFCK".</summary>
    public static ReadOnlySpan<byte> Magic => "RFCK"u8;

    /// <summary>The format version this build writes and reads.</summary>
    public const int FormatVersion = 1;

    private const int DigestLength = 32;
    private const int PrefixLength = 12; // magic, version, header length

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };

    /// <summary>The total file length of a checkpoint with a header of <paramref name="headerLength"/> bytes and <paramref name="payloadLength"/> payload bytes.</summary>
    public static long Length(int headerLength, long payloadLength) => PrefixLength + headerLength + 8 + DigestLength + payloadLength;

    /// <summary>Writes a checkpoint to <paramref name="stream"/> (which it neither flushes nor closes).</summary>
    public static async Task WriteAsync(Stream stream, CheckpointHeader header, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(header);
        var headerBytes = JsonSerializer.SerializeToUtf8Bytes(header, Json);

        var prefix = new byte[PrefixLength];
        Magic.CopyTo(prefix);
        BinaryPrimitives.WriteInt32LittleEndian(prefix.AsSpan(4), FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(prefix.AsSpan(8), headerBytes.Length);

        var lengthAndDigest = new byte[8 + DigestLength];
        BinaryPrimitives.WriteInt64LittleEndian(lengthAndDigest, payload.Length);
        Digest(headerBytes, payload.Span).CopyTo(lengthAndDigest.AsSpan(8));

        await stream.WriteAsync(prefix, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(headerBytes, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(lengthAndDigest, cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(payload, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A checkpoint as bytes (for stores that upload a buffer).</summary>
    public static byte[] Encode(CheckpointHeader header, ReadOnlyMemory<byte> payload)
    {
        using var stream = new MemoryStream();
        WriteAsync(stream, header, payload).GetAwaiter().GetResult(); // a MemoryStream completes synchronously
        return stream.ToArray();
    }

    /// <summary>
    /// The checkpoint stored under <paramref name="key"/>, from its complete bytes: <see cref="Decode"/>, and its header
    /// must name <paramref name="key"/> (else it is corrupt). What every store's <c>Load</c> does once it has the bytes.
    /// </summary>
    /// <param name="key">The key it was stored under.</param>
    /// <param name="bytes">The whole file.</param>
    /// <param name="source">The file's path or URI, for messages.</param>
    public static Checkpoint DecodeAs(CheckpointRef key, ReadOnlyMemory<byte> bytes, string source)
    {
        var (header, payload) = Decode(bytes, source);
        if (!header.Describes(key))
            throw new CheckpointCorruptException(source,
                $"its header names run {header.RunId} epoch {header.Epoch} chunk {header.Chunk}, but its name says {key}");
        return new Checkpoint(key, header, payload, source);
    }

    /// <summary>
    /// Reads a checkpoint's header and payload from its complete bytes, checking everything (see the remarks on
    /// <see cref="CheckpointFile"/>). The payload is a slice of <paramref name="bytes"/>, not a copy.
    /// </summary>
    /// <param name="bytes">The whole file.</param>
    /// <param name="source">The file's path or URI, for the message of a <see cref="CheckpointCorruptException"/>.</param>
    public static (CheckpointHeader Header, ReadOnlyMemory<byte> Payload) Decode(ReadOnlyMemory<byte> bytes, string source)
    {
        var span = bytes.Span;
        if (span.Length < 4)
            throw new CheckpointCorruptException(source, $"truncated: {span.Length} bytes, too short for the magic");
        if (!span[..4].SequenceEqual(Magic))
            throw new CheckpointCorruptException(source, $"bad magic {Convert.ToHexString(span[..4])} (expected {Convert.ToHexString(Magic)}, \"RFCK\"): not a checkpoint file");
        if (span.Length < PrefixLength)
            throw new CheckpointCorruptException(source, $"truncated: {span.Length} bytes, too short for the format version and header length");
        var version = BinaryPrimitives.ReadInt32LittleEndian(span[4..]);
        if (version != FormatVersion)
            throw new CheckpointCorruptException(source, $"format version {version} is not supported (this build reads version {FormatVersion})");
        var headerLength = BinaryPrimitives.ReadInt32LittleEndian(span[8..]);
        if (headerLength < 0)
            throw new CheckpointCorruptException(source, $"header length {headerLength} is negative");

        var afterHeader = (long)PrefixLength + headerLength;
        if (span.Length < afterHeader + 8 + DigestLength)
            throw new CheckpointCorruptException(source, $"truncated: {span.Length} bytes, but the {headerLength}-byte header, payload length and SHA-256 need {afterHeader + 8 + DigestLength}");
        var headerBytes = span.Slice(PrefixLength, headerLength);
        var payloadLength = BinaryPrimitives.ReadInt64LittleEndian(span[(int)afterHeader..]);
        var storedDigest = span.Slice((int)afterHeader + 8, DigestLength);
        if (payloadLength < 0)
            throw new CheckpointCorruptException(source, $"payload length {payloadLength} is negative");

        var expected = Length(headerLength, payloadLength);
        if (span.Length < expected)
            throw new CheckpointCorruptException(source, $"truncated: {span.Length} bytes, but the header and the {payloadLength}-byte payload need {expected}");
        if (span.Length > expected)
            throw new CheckpointCorruptException(source, $"{span.Length - expected} unexpected bytes after the {payloadLength}-byte payload");

        var payloadStart = (int)(afterHeader + 8 + DigestLength);
        var payload = bytes.Slice(payloadStart, (int)payloadLength);
        var actualDigest = Digest(headerBytes, payload.Span);
        if (!CryptographicOperations.FixedTimeEquals(actualDigest, storedDigest))
            throw new CheckpointCorruptException(source,
                $"SHA-256 mismatch: stored {Convert.ToHexStringLower(storedDigest)}, content hashes to {Convert.ToHexStringLower(actualDigest)}");

        CheckpointHeader? header;
        try
        {
            header = JsonSerializer.Deserialize<CheckpointHeader>(headerBytes, Json);
        }
        catch (JsonException e)
        {
            throw new CheckpointCorruptException(source, $"unreadable header: {e.Message}", e);
        }
        if (header is null) throw new CheckpointCorruptException(source, "unreadable header: it is JSON null");
        return (header, payload);
    }

    private static byte[] Digest(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(header);
        hash.AppendData(payload);
        return hash.GetHashAndReset();
    }
}
