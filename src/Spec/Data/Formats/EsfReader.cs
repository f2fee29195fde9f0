using Apache.Arrow;

namespace RapidFire.Spec.Data.Formats;

/// <summary>An ESF as read from its file: its schema and record batches, before any check of its ids or paths.</summary>
internal sealed record EsfContent(Schema Schema, IReadOnlyList<RecordBatch> Batches)
{
    public int RowCount { get; } = Batches.Sum(b => b.Length);
}

/// <summary>Reads an ESF of any <see cref="EsfFormat"/> into Arrow record batches, chosen by the file's extension.</summary>
internal static class EsfReader
{
    /// <summary>
    /// Reads the file; on failure adds the reason to <paramref name="errors"/> and returns <see langword="null"/>.
    /// A CSV file with some malformed rows is returned without them, its errors added.
    /// </summary>
    public static EsfContent? Read(Locator file, IDataStorage storage, ErrorList errors)
    {
        var format = EsfFormats.FromFileName(file.FileName);
        if (format is null)
        {
            var extension = Path.GetExtension(file.FileName);
            errors.Add(null, (extension.Length == 0 ? "has no extension" : $"has the unknown extension '{extension}'")
                             + $"; the format of an ESF is chosen by its extension: {EsfFormats.KnownExtensions}");
            return null;
        }
        try
        {
            using var stream = storage.OpenRead(file);
            return format switch
            {
                EsfFormat.Csv => CsvEsfReader.Read(stream, ',', errors),
                EsfFormat.Tsv => CsvEsfReader.Read(stream, '\t', errors),
                EsfFormat.Parquet => ParquetEsfReader.Read(stream, errors),
                _ => ArrowIpcEsfReader.Read(stream),
            };
        }
        catch (DataException e)
        {
            foreach (var error in e.Errors)
                errors.Add(error with { File = errors.File });
            return null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            errors.Add(null, $"cannot be read as {FormatName(format.Value)}: {e.Message}");
            return null;
        }
    }

    private static string FormatName(EsfFormat format) => format switch
    {
        EsfFormat.Csv => "CSV",
        EsfFormat.Tsv => "TSV",
        EsfFormat.Parquet => "Parquet",
        _ => "Arrow IPC",
    };

    /// <summary>A seekable copy of <paramref name="stream"/> (or the stream itself when it can seek).</summary>
    internal static Stream Seekable(Stream stream)
    {
        if (stream.CanSeek)
            return stream;
        var copy = new MemoryStream();
        stream.CopyTo(copy);
        copy.Position = 0;
        return copy;
    }
}
