using System.Globalization;
using nietras.SeparatedValues;
using Parquet;
using Parquet.Schema;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Host.Export;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Metrics;

namespace RapidFire.Host.Tests.Export;

/// <summary>A Parquet table read back with Parquet.Net: its columns' CLR types and its cells.</summary>
internal sealed record ParquetTable(IReadOnlyList<(string Name, Type Type)> Columns, IReadOnlyList<object?[]> Rows)
{
    public static ParquetTable Read(string path) => ReadAsync(path).GetAwaiter().GetResult();

    private static async Task<ParquetTable> ReadAsync(string path)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var fields = reader.Schema.GetDataFields();
        var columns = fields.Select(f => (f.Name, f.ClrType == typeof(ReadOnlyMemory<char>) ? typeof(string) : f.ClrType)).ToList();
        var rows = new List<object?[]>();
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var count = checked((int)group.RowCount);
            var cells = new object?[fields.Length][];
            for (var c = 0; c < fields.Length; c++) cells[c] = await ReadColumn(group, fields[c], count);
            for (var r = 0; r < count; r++) rows.Add(fields.Select((_, c) => cells[c][r]).ToArray());
        }
        return new ParquetTable(columns, rows);
    }

    private static async Task<object?[]> ReadColumn(ParquetRowGroupReader group, DataField field, int count)
    {
        if (field.ClrType == typeof(string) || field.ClrType == typeof(ReadOnlyMemory<char>))
        {
            var strings = new string?[count];
            await group.ReadAsync(field, strings.AsMemory());
            return strings;
        }
        if (field.ClrType == typeof(long)) return await Nullable<long>(group, field, count);
        if (field.ClrType == typeof(double)) return await Nullable<double>(group, field, count);
        if (field.ClrType == typeof(bool)) return await Nullable<bool>(group, field, count);
        throw new InvalidOperationException($"unexpected column type {field.ClrType} of {field.Name}");
    }

    private static async Task<object?[]> Nullable<T>(ParquetRowGroupReader group, DataField field, int count) where T : struct
    {
        var values = new T?[count];
        await group.ReadAsync<T>(field, values.AsMemory());
        return values.Select(v => v.HasValue ? (object)v.Value : null).ToArray();
    }

    public Type TypeOf(string column) => Columns.Single(c => c.Name == column).Type;

    /// <summary>Asserts that the table holds what <paramref name="csvPath"/> holds: the same columns in order, and each cell's value.</summary>
    public static ParquetTable AssertMatchesCsv(string csvPath)
    {
        var table = Read(ParquetTables.PathFor(csvPath));
        using var csv = Sep.Reader(o => o with { Unescape = true }).FromFile(csvPath);
        Assert.Equal(csv.Header.ColNames, table.Columns.Select(c => c.Name));
        var r = 0;
        foreach (var row in csv)
        {
            Assert.True(r < table.Rows.Count, $"{csvPath}: the Parquet table has fewer rows than the CSV");
            for (var c = 0; c < table.Columns.Count; c++)
            {
                var text = row[c].ToString();
                var (name, type) = table.Columns[c];
                var cell = table.Rows[r][c];
                var where = $"{Path.GetFileName(csvPath)} row {r + 1} column {name}";
                if (text.Length == 0)
                {
                    Assert.True(cell is null, $"{where}: an empty CSV cell should be null, got {cell}");
                    continue;
                }
                object expected = type == typeof(long) ? long.Parse(text, CultureInfo.InvariantCulture)
                    : type == typeof(double) ? double.Parse(text, CultureInfo.InvariantCulture)
                    : type == typeof(bool) ? bool.Parse(text)
                    : text;
                Assert.True(Equals(expected, cell), $"{where}: CSV {text}, Parquet {cell}");
            }
            r++;
        }
        Assert.Equal(r, table.Rows.Count);
        return table;
    }
}

public sealed class ParquetTablesTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("rf-parquet-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static MinibatchRecord Minibatch(Mode mode, int epoch, int chunk, int step, double loss, double accuracy) =>
        new(1, mode, epoch, chunk, step, 32, loss, new Dictionary<string, NamedCount> { ["top1_accuracy"] = new((long)(accuracy * 32), 32) },
            new MetricValues(new Dictionary<string, double> { ["grad_norm"] = loss * 3 }, new Dictionary<string, IReadOnlyList<object>>()));

    private static Config Knobs(double lr) => new([
        new("model_type", "mlp"), new("hidden", 16L), new("epochs", 1L), new("batch_size", 32L),
        new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = lr } }),
        new("named_metrics", new List<object?> { "top1_accuracy" })]);

    [Fact]
    public void Metric_tables_and_the_runs_table_are_written_as_typed_Parquet_beside_their_CSVs()
    {
        var files = new ExperimentFiles(folder, parquet: true);
        files.Apply(1, new ChunkCompleted(0, 0, 0.5, [Minibatch(Mode.Train, 0, 0, 0, 0.7, 0.25), Minibatch(Mode.Train, 0, 0, 1, 1.0 / 3, 0.5)], null));
        files.Apply(1, new ChunkCompleted(0, 1, 0.2, [Minibatch(Mode.Train, 0, 1, 2, double.NaN, 0.5)], null));
        files.Apply(1, new EpochMetricsRecorded(Mode.Train, 0, new Dictionary<string, double> { ["loss"] = 0.3, ["top1_accuracy"] = 0.4 }, false));
        files.Apply(1, new ValidationCompleted(0, [Minibatch(Mode.Validation, 0, 0, 0, 0.9, 0.75)]));
        files.Apply(1, new EpochMetricsRecorded(Mode.Validation, 0, new Dictionary<string, double> { ["loss"] = 0.9, ["top1_accuracy"] = 0.75 }, false));
        files.Apply(1, new RunEnded(RunStatus.Completed, EndReason.Epochs, null));
        var done = new RunState(1, Knobs(0.003))
        {
            Status = RunStatus.Completed, EndedBy = EndReason.Epochs, EpochsDone = 1,
            ValidationHistory = [new Dictionary<string, double> { ["loss"] = 0.9, ["top1_accuracy"] = 0.75 }],
        };
        var failed = new RunState(2, Knobs(0.1)) { Status = RunStatus.Failed, EndedBy = EndReason.Failure, Failure = new RunFailure("Forward", "boom, \"quoted\"") };
        files.WriteRuns([done, failed]);

        var minibatches = ParquetTable.AssertMatchesCsv(Path.Combine(files.MetricsDirectory, "run-1.minibatches.csv"));
        Assert.Equal(["mode", "epoch", "chunk", "step", "examples", "loss", "top1_accuracy", "grad_norm"], minibatches.Columns.Select(c => c.Name));
        Assert.Equal([typeof(string), typeof(long), typeof(long), typeof(long), typeof(long), typeof(double), typeof(double), typeof(double)],
            minibatches.Columns.Select(c => c.Type));
        Assert.Equal(4, minibatches.Rows.Count);
        Assert.Equal(1.0 / 3, minibatches.Rows[1][5]);   // round-trip exact
        Assert.Equal(3L, minibatches.Rows[2][3]);        // 1-based step, as in the CSV

        var epochs = ParquetTable.AssertMatchesCsv(Path.Combine(files.MetricsDirectory, "run-1.epochs.csv"));
        Assert.Equal([("mode", typeof(string)), ("epoch", typeof(long)), ("loss", typeof(double)), ("top1_accuracy", typeof(double))], epochs.Columns);

        var runs = ParquetTable.AssertMatchesCsv(files.RunsFile);
        Assert.Equal(typeof(long), runs.TypeOf("run_id"));
        Assert.Equal(typeof(long), runs.TypeOf("epochs_done"));
        Assert.Equal(typeof(string), runs.TypeOf("status"));
        Assert.Equal(typeof(string), runs.TypeOf("optimizer.args.lr"));   // knobs are strings, as runs.csv writes them
        Assert.Equal(typeof(string), runs.TypeOf("hidden"));
        Assert.Equal(typeof(double), runs.TypeOf("val_top1_accuracy"));
        Assert.Equal([0.75, null], runs.Rows.Select(r => r[runs.Columns.ToList().FindIndex(c => c.Name == "val_top1_accuracy")]));
    }

    [Fact]
    public void Without_the_setting_only_CSVs_are_written()
    {
        Assert.False(ParquetTables.IsEnabled(null));
        Assert.True(ParquetTables.IsEnabled(ParquetTables.Enable()));
        var files = new ExperimentFiles(folder);
        files.Apply(1, new ChunkCompleted(0, 0, 0.5, [Minibatch(Mode.Train, 0, 0, 0, 0.7, 0.25)], null));
        files.Apply(1, new RunEnded(RunStatus.Stopped, EndReason.User, null));
        files.WriteRuns([new RunState(1, Knobs(0.01)) { Status = RunStatus.Stopped, EndedBy = EndReason.User }]);
        Assert.True(File.Exists(Path.Combine(files.MetricsDirectory, "run-1.minibatches.csv")));
        Assert.Empty(Directory.GetFiles(folder, "*.parquet", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_column_whose_cells_do_not_all_parse_as_its_type_is_written_as_strings()
    {
        var path = Path.Combine(folder, "t.parquet");
        ParquetTables.Write(path, [
            new Dictionary<string, string> { ["run_id"] = "1", ["val_split"] = "0.2", ["warm_start"] = "true" },
            new Dictionary<string, string> { ["run_id"] = "2", ["val_split"] = "by-date" },
        ], ParquetTables.RunsColumn);
        var table = ParquetTable.Read(path);
        Assert.Equal([("run_id", typeof(long)), ("val_split", typeof(string)), ("warm_start", typeof(bool))], table.Columns);
        Assert.Equal(["0.2", "by-date"], table.Rows.Select(r => r[1]));
        Assert.Equal([true, null], table.Rows.Select(r => r[2]));
    }
}

[Collection(ExperimentCollection.Name)]
public sealed class ParquetFitTests : IDisposable
{
    private readonly SmallMnist mnist = new();

    public void Dispose() => mnist.Dispose();

    [Fact]
    public async Task A_fit_with_parquet_on_writes_every_table_as_Parquet_with_the_CSV_content()
    {
        using var experiment = new Experiment("parquet", Path.Combine(mnist.Directory, "experiments"), ParquetTables.Enable());
        var result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
            ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));

        Assert.All(result.Runs, r => Assert.Equal(RunStatus.Completed, r.Status));
        foreach (var run in result.Runs)
        {
            var minibatches = ParquetTable.AssertMatchesCsv(Path.Combine(experiment.Path, "metrics", $"run-{run.RunId}.minibatches.csv"));
            Assert.Equal(13, minibatches.Rows.Count); // 10 train + 3 validation minibatches
            Assert.Equal(typeof(double), minibatches.TypeOf("loss"));
            ParquetTable.AssertMatchesCsv(Path.Combine(experiment.Path, "metrics", $"run-{run.RunId}.epochs.csv"));
        }
        var runs = ParquetTable.AssertMatchesCsv(Path.Combine(experiment.Path, "runs.csv"));
        Assert.Equal([1L, 2L], runs.Rows.Select(r => r[0]));
    }
}
