using Apache.Arrow;
using Apache.Arrow.Types;
using Parquet.Schema;
using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

/// <summary>The same small ESF written in every format, and helpers to open ESFs written by a test.</summary>
public static class SampleEsf
{
    public const string Csv = """
        id,filepath,label,score,flag,note
        1,images/a.png,3,0.5,true,"hello, world"
        2,images/b.png,7,,false,
        3,images/c.png,0,2.25,TRUE,plain
        """;

    public static readonly string[] Formats = ["csv", "tsv", "parquet", "arrow", "feather-stream"];

    /// <summary>Writes the sample ESF (and its object files) in <paramref name="format"/>; returns the ESF's file name.</summary>
    public static string Write(TempFolder folder, string format)
    {
        folder.Touch("images/a.png", "images/b.png", "images/c.png");
        switch (format)
        {
            case "csv":
                folder.Write("train.csv", Csv);
                return "train.csv";
            case "tsv":
                folder.Write("train.tsv", "id\tfilepath\tlabel\tscore\tflag\tnote\n1\timages/a.png\t3\t0.5\ttrue\thello, world\n"
                                          + "2\timages/b.png\t7\t\tfalse\t\n3\timages/c.png\t0\t2.25\tTRUE\tplain\n");
                return "train.tsv";
            case "parquet":
            {
                var id = new DataField<long>("id");
                var path = new DataField<string>("filepath");
                var label = new DataField<long>("label");
                var score = new DataField<double?>("score");
                var flag = new DataField<bool>("flag");
                var note = new DataField<string>("note");
                // two row groups, so that rows span batches
                folder.WriteParquet("train.parquet", new ParquetSchema(id, path, label, score, flag, note),
                    async g =>
                    {
                        await g.WriteAsync<long>(id, new long[] { 1, 2 });
                        await g.WriteAsync(path, new[] { "images/a.png", "images/b.png" });
                        await g.WriteAsync<long>(label, new long[] { 3, 7 });
                        await g.WriteAsync<double>(score, new double?[] { 0.5, null });
                        await g.WriteAsync<bool>(flag, new[] { true, false });
                        await g.WriteAsync(note, new string?[] { "hello, world", null }!);
                    },
                    async g =>
                    {
                        await g.WriteAsync<long>(id, new long[] { 3 });
                        await g.WriteAsync(path, new[] { "images/c.png" });
                        await g.WriteAsync<long>(label, new long[] { 0 });
                        await g.WriteAsync<double>(score, new double?[] { 2.25 });
                        await g.WriteAsync<bool>(flag, new[] { true });
                        await g.WriteAsync(note, new[] { "plain" });
                    });
                return "train.parquet";
            }
            case "arrow":
                folder.WriteArrow("train.arrow", fileFormat: true, Batch(0, 3));
                return "train.arrow";
            case "feather-stream":
                folder.WriteArrow("train.feather", fileFormat: false, Batch(0, 1), Batch(1, 3));
                return "train.feather";
            default:
                throw new ArgumentException(format);
        }
    }

    /// <summary>Rows <paramref name="from"/>..<paramref name="to"/> (exclusive) of the sample as an Arrow batch.</summary>
    public static RecordBatch Batch(int from, int to)
    {
        long[] ids = [1, 2, 3];
        string[] paths = ["images/a.png", "images/b.png", "images/c.png"];
        long[] labels = [3, 7, 0];
        double?[] scores = [0.5, null, 2.25];
        bool[] flags = [true, false, true];
        string?[] notes = ["hello, world", null, "plain"];
        var idB = new Int64Array.Builder(); var pathB = new StringArray.Builder(); var labelB = new Int64Array.Builder();
        var scoreB = new DoubleArray.Builder(); var flagB = new BooleanArray.Builder(); var noteB = new StringArray.Builder();
        for (var i = from; i < to; i++)
        {
            idB.Append(ids[i]);
            pathB.Append(paths[i]);
            labelB.Append(labels[i]);
            if (scores[i] is { } s) scoreB.Append(s); else scoreB.AppendNull();
            flagB.Append(flags[i]);
            if (notes[i] is { } n) noteB.Append(n); else noteB.AppendNull();
        }
        var schema = new Schema.Builder()
            .Field(f => f.Name("id").DataType(Int64Type.Default).Nullable(false))
            .Field(f => f.Name("filepath").DataType(StringType.Default))
            .Field(f => f.Name("label").DataType(Int64Type.Default))
            .Field(f => f.Name("score").DataType(DoubleType.Default))
            .Field(f => f.Name("flag").DataType(BooleanType.Default))
            .Field(f => f.Name("note").DataType(StringType.Default))
            .Build();
        return new RecordBatch(schema, [idB.Build(), pathB.Build(), labelB.Build(), scoreB.Build(), flagB.Build(), noteB.Build()], to - from);
    }

    /// <summary>Opens <paramref name="file"/> (in <paramref name="folder"/>) as the train partition of a fresh handle.</summary>
    public static EsfTable Open(TempFolder folder, string file, Func<DataHandleBuilder, DataHandleBuilder>? configure = null)
    {
        var builder = DataHandle.Builder(folder.Path).Train(file);
        return (configure?.Invoke(builder) ?? builder).Build().Open(Mode.Train);
    }

    /// <summary>The errors opening <paramref name="file"/> raises (the test fails when it opens).</summary>
    public static IReadOnlyList<DataError> OpenErrors(TempFolder folder, string file, Func<DataHandleBuilder, DataHandleBuilder>? configure = null)
    {
        var error = Assert.Throws<DataException>(() => Open(folder, file, configure));
        return error.Errors;
    }

    /// <summary>An ESF written as CSV text and opened.</summary>
    public static EsfTable OpenCsv(TempFolder folder, string csv, Func<DataHandleBuilder, DataHandleBuilder>? configure = null)
    {
        folder.Write("esf.csv", csv);
        return Open(folder, "esf.csv", configure);
    }

    /// <summary>The errors of an ESF written as CSV text.</summary>
    public static IReadOnlyList<DataError> CsvErrors(TempFolder folder, string csv, Func<DataHandleBuilder, DataHandleBuilder>? configure = null)
    {
        folder.Write("esf.csv", csv);
        return OpenErrors(folder, "esf.csv", configure);
    }
}
