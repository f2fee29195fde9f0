using Apache.Arrow;
using Apache.Arrow.Ipc;

namespace RapidFire.Spec.Data.Formats;

/// <summary>Reads an Arrow IPC ESF: the file format (starts with <c>ARROW1</c>) or the stream format.</summary>
internal static class ArrowIpcEsfReader
{
    private static ReadOnlySpan<byte> FileMagic => "ARROW1"u8;

    public static EsfContent Read(Stream stream)
    {
        var seekable = EsfReader.Seekable(stream);
        Span<byte> head = stackalloc byte[6];
        var isFile = seekable.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) == head.Length && head.SequenceEqual(FileMagic);
        seekable.Position = 0;
        using var reader = isFile ? new ArrowFileReader(seekable, leaveOpen: true) : new ArrowStreamReader(seekable, leaveOpen: true);
        var batches = new List<RecordBatch>();
        while (reader.ReadNextRecordBatch() is { } batch)
            batches.Add(batch);
        return new EsfContent(reader.Schema ?? throw new InvalidDataException("the file has no schema"), batches);
    }
}
