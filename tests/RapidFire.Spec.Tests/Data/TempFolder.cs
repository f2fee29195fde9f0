using Apache.Arrow;
using Apache.Arrow.Ipc;
using Parquet;
using Parquet.Schema;

namespace RapidFire.Spec.Tests.Data;

/// <summary>A fresh folder under the system temp folder, deleted at the end of the test.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rapidfire-data-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    /// <summary>Writes a text file (creating its folders) and returns its full path.</summary>
    public string Write(string relative, string text)
    {
        var full = this[relative];
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text);
        return full;
    }

    /// <summary>Creates small stand-in object files.</summary>
    public void Touch(params string[] relatives)
    {
        foreach (var relative in relatives)
            Write(relative, "object " + relative);
    }

    /// <summary>Writes a Parquet file with one row group per element of <paramref name="groups"/>.</summary>
    public string WriteParquet(string relative, ParquetSchema schema, params Func<ParquetRowGroupWriter, Task>[] groups)
    {
        var full = this[relative];
        Task.Run(async () =>
        {
            await using var stream = File.Create(full);
            await using var writer = await ParquetWriter.CreateAsync(schema, stream);
            foreach (var group in groups)
            {
                using var rowGroup = writer.CreateRowGroup();
                await group(rowGroup);
            }
        }).GetAwaiter().GetResult();
        return full;
    }

    /// <summary>Writes an Arrow IPC file (file format) or stream, one record batch per element of <paramref name="batches"/>.</summary>
    public string WriteArrow(string relative, bool fileFormat, params RecordBatch[] batches)
    {
        var full = this[relative];
        using var stream = File.Create(full);
        if (fileFormat)
        {
            using var writer = new ArrowFileWriter(stream, batches[0].Schema);
            foreach (var batch in batches)
                writer.WriteRecordBatch(batch);
            writer.WriteEnd();
        }
        else
        {
            using var writer = new ArrowStreamWriter(stream, batches[0].Schema);
            foreach (var batch in batches)
                writer.WriteRecordBatch(batch);
            writer.WriteEnd();
        }
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // a leftover temp folder is harmless
        }
    }
}
