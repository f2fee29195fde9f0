using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using nietras.SeparatedValues;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Spec;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire runs list|stop|resume|delete|clone|log --experiment NAME [--dir DIR]</c>: the runs of an experiment and
/// the interactive-control (IC) operations on them, through the HTTP API of the process that runs it (found by the
/// experiment folder's <c>host.json</c>). <c>runs list</c> of an experiment that is not running prints the final
/// table of its <c>runs.csv</c>.
/// </summary>
/// <remarks>
/// Exit codes: 0 when the table or log was printed or the operation was accepted (pending, applied or dropped);
/// 1 when it was rejected, the run is unknown or the input is malformed; 2 when the experiment does not exist or
/// no running host of it is found (or it stopped answering).
/// </remarks>
public static class RunsCommand
{
    /// <summary>Exit code when the experiment does not exist or is not running.</summary>
    public const int NotRunning = 2;

    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LivenessTimeout = TimeSpan.FromSeconds(3);

    /// <summary>The <c>runs</c> command and its verbs.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var runs = new Command("runs", "List the runs of an experiment, stop, resume, delete or clone them while it trains, and read its IC log.");
        runs.Subcommands.Add(List(stdout, stderr));
        foreach (var operation in new[] { "stop", "resume", "delete" }) runs.Subcommands.Add(Operation(operation, stdout, stderr));
        runs.Subcommands.Add(Clone(stdout, stderr));
        runs.Subcommands.Add(Log(stdout, stderr));
        return runs;
    }

    private static Command List(TextWriter stdout, TextWriter stderr)
    {
        var (name, dir) = ExperimentOptions();
        var all = new Option<bool>("--all") { Description = "Include deleted runs." };
        var command = new Command("list", "Print the runs' status table (the final one from runs.csv when the experiment is not running).")
        {
            name, dir, all,
        };
        command.SetAction((parse, cancellation) => Guarded(stderr, async () =>
        {
            var (folder, problem) = Folder(parse.GetValue(name)!, parse.GetValue(dir)!);
            if (folder is null) return Fail(stderr, problem, NotRunning);
            var console = RapidFireCli.ConsoleFor(stdout);
            if (await HostFile.FindLiveAsync(folder, LivenessTimeout, cancellation) is not { } host)
                return FinalTable(folder, parse.GetValue(name)!, parse.GetValue(all), console, stderr);
            using var client = new ApiClient(host.Url, RequestTimeout, host.Token);
            var experiment = await client.ExperimentAsync(cancellation);
            var views = (await client.RunsAsync(parse.GetValue(all), cancellation)).OrderBy(v => v.RunId).ToList();
            console.WriteLine($"experiment {experiment.Name}: {(experiment.Fitting ? "fitting" : "not fitting")}, {views.Count} runs ({host.Url})");
            console.Write(LiveTable(views));
            foreach (var failed in views.Where(v => v.Error is not null)) console.WriteLine($"run {failed.RunId}: {failed.Error}");
            return RapidFireCli.Ok;
        }));
        return command;
    }

    private static Command Operation(string operation, TextWriter stdout, TextWriter stderr)
    {
        var (name, dir) = ExperimentOptions();
        var runId = RunIdArgument();
        var what = operation switch
        {
            "stop" => "Stop a run at its next chunk boundary; it keeps its progress and can be resumed.",
            "resume" => "Continue a stopped run from where it stopped.",
            _ => "End a run and hide it from the table (runs list --all shows it); its journal and files stay.",
        };
        var command = new Command(operation, what) { runId, name, dir };
        command.SetAction((parse, cancellation) =>
            Send(parse.GetValue(name)!, parse.GetValue(dir)!, operation, parse.GetValue(runId), null, false, stdout, stderr, cancellation));
        return command;
    }

    private static Command Clone(TextWriter stdout, TextWriter stderr)
    {
        var (name, dir) = ExperimentOptions();
        var runId = RunIdArgument();
        var set = new Option<string[]>("--set")
        {
            Description = "A knob to change, knob=value (optimizer.args.lr=0.01, hidden=64; values are JSON when they parse as JSON, else strings). Repeat it for several.",
        };
        var warm = new Option<bool>("--warm") { Description = "Start from the parent's trained model, optimizer and scheduler state instead of from scratch." };
        var command = new Command("clone", "Start a new run with the knobs of RUN_ID plus the changes given.") { runId, name, dir, set, warm };
        command.SetAction((parse, cancellation) =>
        {
            var changes = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var assignment in parse.GetValue(set) ?? [])
            {
                var equals = assignment.IndexOf('=', StringComparison.Ordinal);
                if (equals <= 0 || string.IsNullOrWhiteSpace(assignment[..equals]))
                    return Task.FromResult(Fail(stderr, $"--set '{assignment}' must be knob=value, like --set optimizer.args.lr=0.01", RapidFireCli.InvalidInput));
                if (!changes.TryAdd(assignment[..equals].Trim(), assignment[(equals + 1)..]))
                    return Task.FromResult(Fail(stderr, $"--set names knob '{assignment[..equals].Trim()}' twice", RapidFireCli.InvalidInput));
            }
            return Send(parse.GetValue(name)!, parse.GetValue(dir)!, "clone", parse.GetValue(runId), changes, parse.GetValue(warm), stdout, stderr,
                cancellation);
        });
        return command;
    }

    private static Command Log(TextWriter stdout, TextWriter stderr)
    {
        var (name, dir) = ExperimentOptions();
        var command = new Command("log", "Print the IC log: every operation asked for in the experiment and what came of it.") { name, dir };
        command.SetAction((parse, cancellation) => Guarded(stderr, async () =>
        {
            var experiment = parse.GetValue(name)!;
            var (folder, problem) = Folder(experiment, parse.GetValue(dir)!);
            if (folder is null) return Fail(stderr, problem, NotRunning);
            var console = RapidFireCli.ConsoleFor(stdout);
            IReadOnlyList<ControlLogEntry> log;
            if (await HostFile.FindLiveAsync(folder, LivenessTimeout, cancellation) is { } host)
            {
                using var client = new ApiClient(host.Url, RequestTimeout, host.Token);
                log = await client.ControlLogAsync(cancellation);
            }
            else
            {
                log = ReadLog(Path.Combine(folder, "ic-log.csv"));
                console.WriteLine($"experiment {experiment} is not running: its IC log ({Path.Combine(folder, "ic-log.csv")})");
            }
            {
                if (log.Count == 0)
                {
                    console.WriteLine("no IC operations yet");
                    return RapidFireCli.Ok;
                }
                var table = new Table().Border(TableBorder.Rounded);
                foreach (var column in new[] { "time (UTC)", "op", "run", "operation", "arguments", "outcome" }) table.AddColumn(column);
                foreach (var entry in log)
                    table.AddRow(new Text(entry.RequestedUtc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)), new Text(Int(entry.OpId)),
                        new Text(Int(entry.RunId)), new Text(entry.Operation), new Text(entry.Arguments),
                        new Text($"{Outcome(entry)}{(entry.NewRunId is { } id ? $" (new run {Int(id)})" : "")}" +
                                 (entry.Origin is { } origin ? $"; automatic: {origin}" : "")));
                console.Write(table);
                return RapidFireCli.Ok;
            }
        }));
        return command;
    }

    /// <summary>An operation's status and what came of it; an outcome that only repeats the status is said once.</summary>
    private static string Outcome(ControlLogEntry entry) =>
        entry.Outcome.Length == 0 || string.Equals(entry.Outcome, Lower(entry.Status), StringComparison.OrdinalIgnoreCase)
            ? Lower(entry.Status)
            : $"{Lower(entry.Status)}: {entry.Outcome}";

    /// <summary>The IC log an experiment left in its folder (none when no operation was ever asked for).</summary>
    private static List<ControlLogEntry> ReadLog(string file)
    {
        var entries = new List<ControlLogEntry>();
        if (!File.Exists(file)) return entries;
        using var reader = Sep.Reader(o => o with { Unescape = true }).FromFile(file);
        var hasOrigin = reader.Header.ColNames.Contains("origin"); // written since PBT
        foreach (var row in reader)
            entries.Add(new ControlLogEntry(row["op_id"].Parse<int>(), Time(row["requested_utc"].ToString()) ?? default, row["operation"].ToString(),
                row["run_id"].Parse<int>(), row["arguments"].ToString(), Enum.Parse<ControlStatus>(row["status"].ToString(), ignoreCase: true),
                row["outcome"].ToString(), row["new_run_id"].ToString() is { Length: > 0 } id ? int.Parse(id, CultureInfo.InvariantCulture) : null,
                Time(row["resolved_utc"].ToString()), hasOrigin && row["origin"].ToString() is { Length: > 0 } origin ? origin : null));
        return entries;
    }

    private static DateTime? Time(string text) => text.Length > 0
        ? DateTime.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal)
        : null;

    /// <summary>POSTs an operation to the experiment's host and prints the outcome line.</summary>
    private static Task<int> Send(string name, DirectoryInfo dir, string operation, int runId, IReadOnlyDictionary<string, string>? changes,
        bool warm, TextWriter stdout, TextWriter stderr, CancellationToken cancellation) => Guarded(stderr, async () =>
    {
        if (runId <= 0) return Fail(stderr, $"run id {Int(runId)} is not a positive integer", RapidFireCli.InvalidInput);
        var (client, code) = await Connect(name, dir, stderr, cancellation);
        if (client is null) return code;
        using (client)
        {
            OutcomeView outcome;
            try
            {
                outcome = await client.ControlAsync(operation, runId, changes, warm, cancellation);
            }
            catch (ApiException e) when (e.Status is HttpStatusCode.NotFound or HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge)
            {
                return Fail(stderr, e.Message, RapidFireCli.InvalidInput);
            }
            if (outcome.Status == ControlStatus.Rejected)
            {
                stderr.WriteLine(outcome.ToString());
                return RapidFireCli.InvalidInput;
            }
            stdout.WriteLine(outcome.ToString());
            return RapidFireCli.Ok;
        }
    });

    /// <summary>A client of the running host of the experiment, or null with the exit code after saying why there is none.</summary>
    private static async Task<(ApiClient? Client, int Code)> Connect(string name, DirectoryInfo dir, TextWriter stderr, CancellationToken cancellation)
    {
        var (folder, problem) = Folder(name, dir);
        if (folder is null) return (null, Fail(stderr, problem, NotRunning));
        if (await HostFile.FindLiveAsync(folder, LivenessTimeout, cancellation) is { } host) return (new ApiClient(host.Url, RequestTimeout, host.Token), RapidFireCli.Ok);
        return (null, Fail(stderr,
            $"experiment {name} is not running in {dir.FullName}; start it with `rapidfire fit` or `rapidfire resume`", NotRunning));
    }

    /// <summary>The experiment's folder, or null and what is wrong.</summary>
    private static (string? Folder, string Problem) Folder(string name, DirectoryInfo dir)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')) || name is "." or "..")
            return (null, $"experiment name '{name}' must be letters, digits, '-', '_' or '.'");
        var folder = Path.Combine(dir.FullName, name);
        return Directory.Exists(folder) ? (folder, "") : (null, $"there is no experiment {name} in {dir.FullName} (no folder {folder})");
    }

    /// <summary>The table of a running experiment: the live state of each run.</summary>
    private static Table LiveTable(IReadOnlyList<RunView> runs)
    {
        // Secret knobs come masked from the host; masked here too, for a host that predates masking.
        var knobs = runs.Select(r => r.Knobs.ToDictionary(kv => kv.Key, kv => SecretMask.MaskText(kv.Key, RunView.Text(kv.Value)))).ToList();
        var varying = VaryingKnobs.Of(knobs);
        var metrics = runs.SelectMany(r => r.Validation?.Keys ?? []).Distinct().ToList();
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("run");
        table.AddColumn("status");
        table.AddColumn("progress");
        foreach (var knob in varying) table.AddColumn(Display(knob));
        table.AddColumn(new TableColumn("train loss").RightAligned());
        foreach (var metric in metrics) table.AddColumn(new TableColumn($"val {metric}").RightAligned());
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var cells = new List<IRenderable> { new Text(Int(run.RunId)), new Markup(Status(run.Status.ToString(), run.EndedBy)), new Text(run.Progress) };
            cells.AddRange(varying.Select(k => new Text(knobs[i].GetValueOrDefault(k, ""))));
            cells.Add(new Text(Number(run.TrainLoss)));
            cells.AddRange(metrics.Select(m => new Text(Number(run.Validation is not null && run.Validation.TryGetValue(m, out var v) ? v : null))));
            table.AddRow(cells);
        }
        return table;
    }

    /// <summary>Prints the final table of an experiment that is not running, from its <c>runs.csv</c>.</summary>
    private static int FinalTable(string folder, string name, bool all, IAnsiConsole console, TextWriter stderr)
    {
        var file = Path.Combine(folder, "runs.csv");
        if (!File.Exists(file))
            return Fail(stderr, $"experiment {name} is not running and has no runs.csv yet ({file}); start it with `rapidfire fit` or `rapidfire resume`",
                NotRunning);
        var (columns, read) = CsvRows.Read(file);
        // A runs.csv written before secrets were masked still shows them masked.
        var rows = read.Select(r => r.ToDictionary(kv => kv.Key, kv => SecretMask.MaskText(kv.Key, kv.Value), StringComparer.Ordinal))
            .Where(r => all || r.GetValueOrDefault("status") != nameof(RunStatus.Deleted))
            .OrderBy(r => int.TryParse(r.GetValueOrDefault("run_id"), CultureInfo.InvariantCulture, out var id) ? id : int.MaxValue).ToList();
        string[] fixedColumns = ["run_id", "status", "ended_by", "epochs_done", "error"];
        var metrics = columns.Where(c => c.StartsWith("val_", StringComparison.Ordinal)).ToList();
        var varying = VaryingKnobs.Of(rows.Select(r => columns.Where(c => !fixedColumns.Contains(c) && !metrics.Contains(c))
            .Where(c => r[c].Length > 0).ToDictionary(c => c, c => r[c])).ToList());

        console.WriteLine($"experiment {name} is not running: the final table of its last fit ({file})");
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("run");
        table.AddColumn("status");
        table.AddColumn(new TableColumn("epochs").RightAligned());
        foreach (var knob in varying) table.AddColumn(Display(knob));
        foreach (var metric in metrics) table.AddColumn(new TableColumn($"val {metric["val_".Length..]}").RightAligned());
        foreach (var row in rows)
        {
            var cells = new List<IRenderable>
            {
                new Text(row.GetValueOrDefault("run_id", "")),
                new Markup(Status(row.GetValueOrDefault("status", ""), NullIfEmpty(row.GetValueOrDefault("ended_by")))),
                new Text(row.GetValueOrDefault("epochs_done", "")),
            };
            cells.AddRange(varying.Select(k => new Text(row.GetValueOrDefault(k, ""))));
            cells.AddRange(metrics.Select(m => new Text(double.TryParse(row[m], CultureInfo.InvariantCulture, out var v) ? Number(v) : row[m])));
            table.AddRow(cells);
        }
        console.Write(table);
        foreach (var row in rows.Where(r => r.GetValueOrDefault("error", "").Length > 0)) console.WriteLine($"run {row["run_id"]}: {row["error"]}");
        return RapidFireCli.Ok;
    }

    /// <summary>A knob's column title (see <see cref="VaryingKnobs.Display"/>).</summary>
    private static string Display(string knob) => Markup.Escape(VaryingKnobs.Display(knob));

    private static string Status(string status, string? endedBy)
    {
        var text = char.ToUpperInvariant(status.FirstOrDefault()) + (status.Length > 1 ? status[1..] : "");
        var colored = text switch
        {
            "Completed" => "[green]Completed[/]",
            "Failed" => "[red]Failed[/]",
            "Stopped" => "[yellow]Stopped[/]",
            "Deleted" => "[grey]Deleted[/]",
            _ => Markup.Escape(text),
        };
        return endedBy is null or "" || text == "Failed" ? colored : $"{colored} ({Markup.Escape(endedBy)})";
    }

    private static (Option<string> Name, Option<DirectoryInfo> Dir) ExperimentOptions() =>
        (new Option<string>("--experiment") { Description = "The experiment's name.", Required = true }, FitCommand.DirOption());

    private static Argument<int> RunIdArgument() => new("RUN_ID") { Description = "The run's id, as runs list shows it." };

    /// <summary>Runs a verb; a host that stops answering mid-way is exit code 2, with what happened.</summary>
    private static async Task<int> Guarded(TextWriter stderr, Func<Task<int>> verb)
    {
        try
        {
            return await verb();
        }
        catch (HttpRequestException e)
        {
            return Fail(stderr, $"the experiment's host did not answer: {e.Message}", NotRunning);
        }
        catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
        {
            return Fail(stderr, $"the experiment's host did not answer within {RequestTimeout.TotalSeconds:0} s", NotRunning);
        }
        catch (Exception e) when (e is ApiException or JsonException or IOException)
        {
            return Fail(stderr, e.Message, NotRunning);
        }
    }

    private static int Fail(TextWriter stderr, string message, int code)
    {
        stderr.WriteLine($"error: {message}");
        return code;
    }

    private static string? NullIfEmpty(string? text) => string.IsNullOrEmpty(text) ? null : text;

    private static string Lower(ControlStatus status) => status.ToString().ToLowerInvariant();

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double? value) => value is { } v ? v.ToString("0.####", CultureInfo.InvariantCulture) : "-";
}
