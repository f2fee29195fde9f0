using System.Globalization;
using nietras.SeparatedValues;
using Parquet;
using Parquet.Schema;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Evaluation;

namespace RapidFire.Host.Evaluation;

/// <summary>
/// The files of test and predict in the experiment folder: <c>test/run-N.csv</c> (one row: <c>run_id</c>,
/// <c>checkpoint</c>, <c>checkpoint_file</c>, <c>epoch</c>, then each test metric), <c>test/summary.csv</c> (one such
/// row per run of the last test, with an <c>error</c> column), and <c>predict/run-N.csv</c> or <c>.parquet</c>
/// (<c>id</c>, then the outputs' columns, one row per predict id). Each file is written whole to a temporary file and
/// renamed over the previous one; a run whose latest test or predict failed has no file (an older one is removed), and a
/// run has predictions in the latest format only.
/// </summary>
internal static class EvaluationFiles
{
    public static string TestFolder(string experimentPath) => Path.Combine(experimentPath, "test");

    public static string PredictFolder(string experimentPath) => Path.Combine(experimentPath, "predict");

    /// <summary>Writes <c>test/run-N.csv</c>; returns its path.</summary>
    public static string WriteTest(string folder, int runId, string choice, CheckpointRef checkpoint, IReadOnlyDictionary<string, double> metrics)
    {
        var path = Path.Combine(folder, $"run-{runId}.csv");
        WriteCsv(path, [TestRow(runId, choice, checkpoint, metrics, null)]);
        return path;
    }

    /// <summary>The test summary's path, <c>test/summary.csv</c>.</summary>
    public static string TestSummary(string folder) => Path.Combine(folder, "summary.csv");

    /// <summary>Writes <c>test/summary.csv</c>: a row per run tested, the union of their metrics, and why a run failed.</summary>
    public static void WriteTestSummary(string folder, string choice, IReadOnlyList<RunTestResult> results) =>
        WriteCsv(TestSummary(folder),
            [.. results.Select(r => TestRow(r.RunId, choice, r.Checkpoint, r.Metrics, r.Error ?? ""))]);

    private static Dictionary<string, string> TestRow(int runId, string choice, CheckpointRef? checkpoint,
        IReadOnlyDictionary<string, double> metrics, string? error)
    {
        var row = new Dictionary<string, string>
        {
            ["run_id"] = runId.ToString(CultureInfo.InvariantCulture),
            ["checkpoint"] = choice,
            ["checkpoint_file"] = checkpoint?.RelativePath ?? "",
            ["epoch"] = checkpoint is null ? "" : (checkpoint.Epoch + 1).ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (name, value) in metrics) row[name] = Text(value);
        if (error is not null) row["error"] = error;
        return row;
    }

    /// <summary>Removes <c>test/run-N.csv</c> (the run's latest test failed).</summary>
    public static void RemoveTest(string folder, int runId) => Remove(Path.Combine(folder, $"run-{runId}.csv"));

    /// <summary>Removes the run's predictions files (its latest predict failed).</summary>
    public static void RemovePredictions(string folder, int runId)
    {
        foreach (var format in Enum.GetValues<PredictFormat>()) Remove(PredictionsPath(folder, runId, format));
    }

    private static void Remove(string path)
    {
        if (File.Exists(path)) File.Delete(path);
    }

    private static string PredictionsPath(string folder, int runId, PredictFormat format) =>
        Path.Combine(folder, $"run-{runId}.{(format == PredictFormat.Parquet ? "parquet" : "csv")}");

    /// <summary>Writes a run's predictions as <c>predict/run-N.csv</c> or <c>.parquet</c>; returns the path.</summary>
    public static string WritePredictions(string folder, int runId, PredictionTable predictions, PredictFormat format)
    {
        Directory.CreateDirectory(folder);
        var path = PredictionsPath(folder, runId, format);
        var temp = path + ".tmp";
        if (format == PredictFormat.Parquet) WriteParquet(temp, predictions).GetAwaiter().GetResult();
        else WritePredictionsCsv(temp, predictions);
        File.Move(temp, path, overwrite: true);
        // The folder holds the latest predictions only: not an older file of the other format.
        foreach (var other in Enum.GetValues<PredictFormat>().Where(f => f != format)) Remove(PredictionsPath(folder, runId, other));
        return path;
    }

    private static void WritePredictionsCsv(string path, PredictionTable predictions)
    {
        using var writer = Sep.New(',').Writer(o => o with { Escape = true }).ToFile(path);
        writer.Header.Add(predictions.ColumnNames.ToArray());
        for (var r = 0; r < predictions.RowCount; r++)
        {
            using var row = writer.NewRow();
            var i = 0;
            row[i++].Set(predictions.Ids[r].ToString(CultureInfo.InvariantCulture));
            foreach (var column in predictions.Columns)
                for (var e = 0; e < column.Width; e++)
                    row[i++].Set(column.Value(r, e) switch
                    {
                        long l => l.ToString(CultureInfo.InvariantCulture),
                        double d => Text(d),
                        var s => (string?)s ?? "",
                    });
        }
    }

    /// <summary>One row group; <c>id</c> and integer outputs as int64, floating-point outputs as double, strings as UTF-8.</summary>
    private static async Task WriteParquet(string path, PredictionTable predictions)
    {
        var fields = new List<DataField> { new DataField<long?>(PredictionTable.IdColumn) };
        foreach (var column in predictions.Columns)
            foreach (var name in column.Names)
                fields.Add(column.Type switch
                {
                    PredictionType.Int64 => new DataField<long?>(name),
                    PredictionType.Double => new DataField<double?>(name),
                    _ => new DataField<string>(name, nullable: true),
                });
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(new ParquetSchema(fields.Cast<Field>().ToArray()), stream);
        using var group = writer.CreateRowGroup();
        await group.WriteAsync<long>(fields[0], predictions.Ids.Select(id => (long?)id).ToArray().AsMemory());
        var f = 1;
        var rows = predictions.RowCount;
        foreach (var column in predictions.Columns)
            for (var e = 0; e < column.Width; e++, f++)
            {
                var element = e;
                var width = column.Width;
                switch (column.Type)
                {
                    case PredictionType.Int64:
                        await group.WriteAsync<long>(fields[f], Enumerable.Range(0, rows).Select(r => (long?)column.Longs[r * width + element]).ToArray().AsMemory());
                        break;
                    case PredictionType.Double:
                        await group.WriteAsync<double>(fields[f], Enumerable.Range(0, rows).Select(r => (double?)column.Doubles[r * width + element]).ToArray().AsMemory());
                        break;
                    default:
                        await group.WriteAsync(fields[f], Enumerable.Range(0, rows).Select(r => column.Strings[r * width + element]).ToArray());
                        break;
                }
            }
    }

    /// <summary>Writes rows with the union of their columns (first-seen order, <c>error</c> last); a missing cell is empty.</summary>
    private static void WriteCsv(string path, IReadOnlyList<Dictionary<string, string>> rows)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var columns = rows.SelectMany(r => r.Keys).Distinct().OrderBy(c => c == "error").ToList(); // the error, if any, last
        var temp = path + ".tmp";
        using (var writer = Sep.New(',').Writer(o => o with { Escape = true }).ToFile(temp))
        {
            writer.Header.Add(columns.ToArray());
            foreach (var source in rows)
            {
                using var row = writer.NewRow();
                foreach (var column in columns) row[column].Set(source.GetValueOrDefault(column, ""));
            }
        }
        File.Move(temp, path, overwrite: true);
    }

    private static string Text(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
