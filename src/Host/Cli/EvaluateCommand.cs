using System.CommandLine;
using System.Globalization;
using RapidFire.Actors.Checkpoints;
using RapidFire.Host.Evaluation;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using Spectre.Console;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire test --experiment NAME [--dir DIR] [--runs 1,3] [--checkpoint final|best:METRIC[:min|max]|epoch:N]
/// [--data handle.json] [--device D]</c> and <c>rapidfire predict ... [--format csv|parquet]</c>: evaluate trained runs
/// of an experiment that is not running (<see cref="Experiment.RunTestAsync"/>, <see cref="Experiment.RunPredictAsync"/>)
/// and print a table, one row per run.
/// </summary>
/// <remarks>Exit codes: 0 when it ran (even if some runs failed: the table says so, and their errors follow it on stderr); 1 for a bad option, an
/// unknown run or a data handle without the partition; 2 when the experiment does not exist, cannot be opened or is fitting, or
/// when Ctrl+C cancelled it.</remarks>
public static class EvaluateCommand
{
    /// <summary>Exit code when the experiment cannot be opened or is fitting.</summary>
    public const int CouldNotRun = 2;

    /// <summary>The <c>test</c> command.</summary>
    public static Command CreateTest(TextWriter stdout, TextWriter stderr)
    {
        var common = new CommonOptions("test");
        var command = new Command("test", "Test trained runs on the data handle's test partition: loss, named metrics and AggregateMetrics per run.");
        common.AddTo(command);
        command.SetAction((parse, cancellation) => RunAsync(common, parse, stdout, stderr, async (experiment, request) =>
        {
            var report = await experiment.RunTestAsync(new TestOptions(request.Runs, request.Choice, request.Data, request.Device), cancellation);
            Warn(report.Warnings, stderr);
            RapidFireCli.ConsoleFor(stdout).Write(TestTable(report));
            Errors(report.Runs.Select(r => r.Error), stderr);
            stdout.WriteLine($"test results: {report.Folder} (run-N.csv, summary.csv)");
        }));
        return command;
    }

    /// <summary>The <c>predict</c> command.</summary>
    public static Command CreatePredict(TextWriter stdout, TextWriter stderr)
    {
        var common = new CommonOptions("predict with");
        var format = new Option<string>("--format")
        {
            Description = "The predictions files' format: csv (default) or parquet.",
            DefaultValueFactory = _ => "csv",
        };
        format.AcceptOnlyFromAmong("csv", "parquet");
        var command = new Command("predict", "Predict with trained runs over the data handle's predict partition: one file per run, one row per predict id.");
        common.AddTo(command);
        command.Options.Add(format);
        command.SetAction((parse, cancellation) => RunAsync(common, parse, stdout, stderr, async (experiment, request) =>
        {
            var chosen = parse.GetValue(format) == "parquet" ? PredictFormat.Parquet : PredictFormat.Csv;
            var report = await experiment.RunPredictAsync(new PredictOptions(request.Runs, request.Choice, request.Data, request.Device, chosen), cancellation);
            Warn(report.Warnings, stderr);
            RapidFireCli.ConsoleFor(stdout).Write(PredictTable(report));
            Errors(report.Runs.Select(r => r.Error), stderr);
            stdout.WriteLine($"predictions: {report.Folder}");
        }));
        return command;
    }

    private sealed record Request(IReadOnlyList<int>? Runs, CheckpointChoice Choice, DataHandle? Data, string? Device);

    private sealed class CommonOptions(string verb)
    {
        public Option<string> Name { get; } = new("--experiment") { Description = "The experiment's name.", Required = true };
        public Option<DirectoryInfo> Dir { get; } = FitCommand.DirOption();
        public Option<string?> Runs { get; } = new("--runs") { Description = $"The runs to {verb}, e.g. 1,3 (default: every run that completed, in any fit)." };
        public Option<string> Checkpoint { get; } = new("--checkpoint")
        {
            Description = "Which checkpoint of each run: final (default), best:<metric>[:min|max] (the epoch with the best validation metric) or epoch:<n>.",
            DefaultValueFactory = _ => "final",
        };
        public Option<FileInfo?> Data { get; } = new("--data") { Description = "A data handle to read the partition from (default: each run's fit's own)." };
        public Option<string?> Device { get; } = new("--device") { Description = "cpu or cuda:I (default: the fit's first device, if this machine has it, else cpu)." };
        public Option<FileInfo?> Settings { get; } = FitCommand.SettingsOption();
        public Option<string?> S3Endpoint { get; } = S3Options.Endpoint();

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Name, Dir, Runs, Checkpoint, Data, Device, Settings, S3Endpoint }) command.Options.Add(option);
        }
    }

    private static async Task<int> RunAsync(CommonOptions options, ParseResult parse, TextWriter stdout, TextWriter stderr,
        Func<Experiment, Request, Task> work)
    {
        var name = parse.GetValue(options.Name)!;
        var directory = parse.GetValue(options.Dir)!.FullName;
        CheckpointChoice choice;
        IReadOnlyList<int>? runs = null;
        DataHandle? data = null;
        try
        {
            choice = CheckpointChoice.Parse(parse.GetValue(options.Checkpoint)!);
            if (parse.GetValue(options.Runs) is { } asked) runs = RunIds(asked);
            if (parse.GetValue(options.Data) is { } file) data = DataHandle.Load(file.FullName);
        }
        catch (Exception e) when (e is ArgumentException or RapidFireException)
        {
            return Fail(stderr, e, RapidFireCli.InvalidInput);
        }
        var folder = Path.Combine(directory, name);
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')) || name is "." or "..")
            return Fail(stderr, new ArgumentException($"experiment name '{name}' must be letters, digits, '-', '_' or '.'"), RapidFireCli.InvalidInput);
        if (!Directory.Exists(folder))
            return Fail(stderr, new ArgumentException($"there is no experiment {name} in {directory} (no folder {folder})"), CouldNotRun);

        Experiment experiment;
        try
        {
            // The settings say where data and checkpoints on S3 are reached (rapidfire.s3, --s3-endpoint).
            experiment = Experiment.Open(name, directory, S3Options.Apply(parse, options.S3Endpoint, FitCommand.Settings(parse.GetValue(options.Settings))));
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or RapidFireException)
        {
            return Fail(stderr, new InvalidOperationException($"experiment {name} cannot be opened: {e.Message}"), CouldNotRun);
        }
        using (experiment)
        {
            try
            {
                await work(experiment, new Request(runs, choice, data, parse.GetValue(options.Device)));
                return RapidFireCli.Ok;
            }
            catch (Exception e) when (e is ArgumentException or RapidFireException)
            {
                return Fail(stderr, e, RapidFireCli.InvalidInput);
            }
            catch (InvalidOperationException e)
            {
                return Fail(stderr, e, CouldNotRun);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C: the runs evaluated so far have their files; the summary is not written.
                stderr.WriteLine("cancelled");
                return CouldNotRun;
            }
        }
    }

    private static IReadOnlyList<int> RunIds(string text)
    {
        var parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var ids = new List<int>();
        foreach (var part in parts)
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id < 1)
                throw new ArgumentException($"--runs takes run ids such as 1,3 (got '{text}')");
            ids.Add(id);
        }
        return ids.Count > 0 ? ids : throw new ArgumentException($"--runs takes run ids such as 1,3 (got '{text}')");
    }

    private static void Warn(IReadOnlyList<string> warnings, TextWriter stderr)
    {
        foreach (var warning in warnings) stderr.WriteLine($"warning: {warning}");
    }

    /// <summary>The runs that failed, one line each (the table says <c>failed</c>).</summary>
    private static void Errors(IEnumerable<string?> errors, TextWriter stderr)
    {
        foreach (var error in errors.OfType<string>()) stderr.WriteLine($"error: {error}");
    }

    private static int Fail(TextWriter stderr, Exception e, int code)
    {
        var problems = e is RapidFireException r ? r.Problems : [e.Message];
        foreach (var problem in problems) stderr.WriteLine($"error: {problem}");
        return code;
    }

    /// <summary>The test table: run, checkpoint, epoch, each metric (the union over the runs), and a status column when a run failed.</summary>
    internal static Table TestTable(TestReport report)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("run");
        table.AddColumn("checkpoint");
        table.AddColumn(new TableColumn("epoch").RightAligned());
        var metrics = report.Runs.SelectMany(r => r.Metrics.Keys).Distinct().ToList();
        foreach (var metric in metrics) table.AddColumn(new TableColumn($"test {metric}").RightAligned());
        var failed = report.Runs.Any(r => r.Error is not null);
        if (failed) table.AddColumn("status");
        foreach (var run in report.Runs)
        {
            var cells = new List<string>
            {
                run.RunId.ToString(CultureInfo.InvariantCulture),
                Checkpoint(run.Checkpoint, report.Checkpoint),
                run.Epoch?.ToString(CultureInfo.InvariantCulture) ?? "-",
            };
            cells.AddRange(metrics.Select(m => run.Metrics.TryGetValue(m, out var v) ? v.ToString("0.####", CultureInfo.InvariantCulture) : "-"));
            if (failed) cells.Add(run.Error is null ? "ok" : "failed");
            table.AddRow(cells.Select(c => new Text(c)).ToArray());
        }
        return table;
    }

    /// <summary>The predict table: run, checkpoint, epoch, rows, columns and file (<c>failed</c> for a run that failed).</summary>
    internal static Table PredictTable(PredictReport report)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("run");
        table.AddColumn("checkpoint");
        table.AddColumn(new TableColumn("epoch").RightAligned());
        table.AddColumn(new TableColumn("rows").RightAligned());
        table.AddColumn("columns");
        table.AddColumn("file");
        foreach (var run in report.Runs)
            table.AddRow(
                new Text(run.RunId.ToString(CultureInfo.InvariantCulture)),
                new Text(Checkpoint(run.Checkpoint, report.Checkpoint)),
                new Text(run.Epoch?.ToString(CultureInfo.InvariantCulture) ?? "-"),
                new Text(run.Error is null ? run.Rows.ToString(CultureInfo.InvariantCulture) : "-"),
                new Text(run.Error is null ? Columns(run.Columns) : "-"),
                new Text(run.Error is null ? run.File! : "failed"));
        return table;
    }

    private static string Checkpoint(CheckpointRef? used, string choice) => used is null ? choice : $"{choice} ({used.FileName})";

    /// <summary>The columns of a predictions file, shortened: <c>id, predictions, logits_0..logits_9</c>.</summary>
    private static string Columns(IReadOnlyList<string> columns)
    {
        var parts = new List<string>();
        for (var i = 0; i < columns.Count;)
        {
            var j = i;
            var stem = Stem(columns[i]);
            while (stem is not null && j + 1 < columns.Count && Stem(columns[j + 1]) == stem) j++;
            parts.Add(j > i ? $"{columns[i]}..{columns[j]}" : columns[i]);
            i = j + 1;
        }
        return string.Join(", ", parts);
    }

    private static string? Stem(string column) => column.LastIndexOf('_') is var at and > 0 && column[(at + 1)..].All(char.IsAsciiDigit) && at + 1 < column.Length
        ? column[..at]
        : null;
}
