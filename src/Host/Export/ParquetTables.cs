using System.Globalization;
using Parquet;
using Parquet.Schema;

namespace RapidFire.Host.Export;

/// <summary>The type of a column of an exported table.</summary>
public enum ColumnType
{
    /// <summary>64-bit integers (epochs, chunks, steps, examples, run ids).</summary>
    Int64,
    /// <summary>Doubles (losses and metrics).</summary>
    Double,
    /// <summary>Booleans.</summary>
    Boolean,
    /// <summary>UTF-8 strings (modes, statuses, knobs).</summary>
    String,
}

/// <summary>
/// Writes an experiment's tables (the same rows as its CSV files) as Parquet files with typed columns, so they load
/// into pandas, Polars, Spark or DuckDB without parsing: <c>metrics/run-N.minibatches.parquet</c>,
/// <c>metrics/run-N.epochs.parquet</c> and <c>runs.parquet</c> beside their CSVs. Turned on by the HOCON setting
/// <c>rapidfire.metrics.parquet = on</c> (<see cref="Setting"/>, <see cref="Enable"/>); the CSVs are always written.
/// </summary>
/// <remarks>
/// A table is built from the CSV's cells (the same text, so the same values: doubles are written round-trip), one row
/// group, columns in the CSV's order. An empty cell is null. A column whose cells do not all parse as its type is
/// written as strings rather than lose a value (a knob named <c>val_split</c> holding text, say).
/// </remarks>
public static class ParquetTables
{
    /// <summary>The HOCON path of the switch: <c>rapidfire.metrics.parquet = on</c> (default off).</summary>
    public const string Setting = "rapidfire.metrics.parquet";

    /// <summary>The runtime settings <paramref name="settings"/> (or none) with Parquet tables turned on.</summary>
    public static Akka.Configuration.Config Enable(Akka.Configuration.Config? settings = null) =>
        Akka.Configuration.ConfigurationFactory.ParseString($"{Setting} = on")
            .WithFallback(settings ?? Akka.Configuration.Config.Empty);

    /// <summary>Whether <paramref name="settings"/> turn Parquet tables on (<see cref="Setting"/>; absent: off).</summary>
    public static bool IsEnabled(Akka.Configuration.Config? settings) =>
        (settings ?? Akka.Configuration.Config.Empty).WithFallback(Actors.RuntimeSettings.Reference).GetBoolean(Setting);

    /// <summary>The Parquet file beside a CSV file: <c>run-1.epochs.csv</c> gives <c>run-1.epochs.parquet</c>.</summary>
    public static string PathFor(string csvPath) => Path.ChangeExtension(csvPath, ".parquet");

    /// <summary>Column types of the minibatch and epoch tables: integer positions, a string mode, double metrics.</summary>
    public static ColumnType MetricsColumn(string name) => name switch
    {
        "mode" => ColumnType.String,
        "epoch" or "chunk" or "step" or "examples" => ColumnType.Int64,
        _ => ColumnType.Double,
    };

    /// <summary>
    /// Column types of the runs table: integer ids and counts, a boolean <c>warm_start</c>, double <c>val_*</c>
    /// metrics, strings for the status, the end reason, the error and every knob (as <c>runs.csv</c> writes them).
    /// </summary>
    public static ColumnType RunsColumn(string name) => name switch
    {
        "run_id" or "epochs_done" or "cloned_from" => ColumnType.Int64,
        "warm_start" => ColumnType.Boolean,
        _ when name.StartsWith("val_", StringComparison.Ordinal) => ColumnType.Double,
        _ => ColumnType.String,
    };

    /// <summary>
    /// Writes <paramref name="rows"/> (cells as the CSV holds them; the union of their columns in first-seen order, a
    /// missing cell is null) to <paramref name="path"/>, atomically (a temporary file, then a rename). Rows without any
    /// column write nothing.
    /// </summary>
    /// <param name="path">The Parquet file.</param>
    /// <param name="rows">The table's rows.</param>
    /// <param name="typeOf">Each column's type, by name.</param>
    public static void Write(string path, IReadOnlyList<IReadOnlyDictionary<string, string>> rows, Func<string, ColumnType> typeOf) =>
        WriteAsync(path, rows, typeOf).GetAwaiter().GetResult();

    /// <summary>The asynchronous form of <see cref="Write"/>.</summary>
    public static async Task WriteAsync(string path, IReadOnlyList<IReadOnlyDictionary<string, string>> rows, Func<string, ColumnType> typeOf)
    {
        var names = rows.SelectMany(r => r.Keys).Distinct().ToList();
        if (names.Count == 0) return;
        var columns = names.Select(name => Column(name, typeOf(name), rows.Select(r => r.GetValueOrDefault(name, "")).ToList())).ToList();

        using var buffer = new MemoryStream();
        var schema = new ParquetSchema(columns.Select(c => (Field)c.Field).ToArray());
        await using (var writer = await ParquetWriter.CreateAsync(schema, buffer))
        {
            using var group = writer.CreateRowGroup();
            foreach (var column in columns) await column.WriteTo(group);
        }
        var temp = path + ".tmp";
        await File.WriteAllBytesAsync(temp, buffer.ToArray());
        File.Move(temp, path, overwrite: true);
    }

    private abstract record TypedColumn(DataField Field)
    {
        public abstract Task WriteTo(ParquetRowGroupWriter group);
    }

    private sealed record Values<T>(DataField Field, T?[] Cells) : TypedColumn(Field) where T : struct
    {
        public override Task WriteTo(ParquetRowGroupWriter group) => group.WriteAsync<T>(Field, Cells.AsMemory());
    }

    private sealed record Strings(DataField Field, string?[] Cells) : TypedColumn(Field)
    {
        public override Task WriteTo(ParquetRowGroupWriter group) => group.WriteAsync(Field, Cells);
    }

    /// <summary>The column typed as asked when every non-empty cell parses so, else as strings.</summary>
    private static TypedColumn Column(string name, ColumnType type, IReadOnlyList<string> cells)
    {
        switch (type)
        {
            case ColumnType.Int64 when TryParseAll(cells, Int64Of, out var longs):
                return new Values<long>(new DataField<long?>(name), longs);
            case ColumnType.Double or ColumnType.Int64 when TryParseAll(cells, DoubleOf, out var doubles):
                return new Values<double>(new DataField<double?>(name), doubles);
            case ColumnType.Boolean when TryParseAll(cells, BooleanOf, out var booleans):
                return new Values<bool>(new DataField<bool?>(name), booleans);
            default:
                return new Strings(new DataField<string>(name, nullable: true), cells.Select(c => c.Length == 0 ? null : c).ToArray());
        }
    }

    private static bool TryParseAll<T>(IReadOnlyList<string> cells, Func<string, T?> parse, out T?[] values) where T : struct
    {
        values = new T?[cells.Count];
        for (var i = 0; i < cells.Count; i++)
        {
            if (cells[i].Length == 0) continue;
            if (parse(cells[i]) is not { } value) return false;
            values[i] = value;
        }
        return true;
    }

    private static long? Int64Of(string text) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static double? DoubleOf(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static bool? BooleanOf(string text) => text switch
    {
        "true" => true,
        "false" => false,
        _ => null,
    };
}
