using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using RapidFire.Actors.Runs;
using RapidFire.Host.Api;
using RapidFire.Host.Cli.Progress;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Progress;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire fit --spec S.cs --data handle.json --config configs.json --experiment NAME --dir DIR [--chunks N]
/// [--devices cpu|cpu:N|cuda|cuda:I,J] [--seed S] [--s3-endpoint URL] [--dashboard [PORT]] [--api-address A] [--parquet] [--mlflow URI]</c>:
/// trains every config concurrently, with a live table, serving the experiment's HTTP API and dashboard
/// (<see cref="ApiServer"/>) while it trains.
/// </summary>
public static class FitCommand
{
    /// <summary>Exit code when the fit could not start (the inputs were valid).</summary>
    public const int CouldNotStart = 2;

    /// <summary>Exit code when the fit was interrupted before its runs ended (a full disk): <c>rapidfire resume</c> continues it.</summary>
    public const int Interrupted = 3;

    /// <summary>The <c>fit</c> command.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var spec = new Option<FileInfo>("--spec") { Description = "The MLSpec source file (.cs).", Required = true };
        var data = new Option<FileInfo>("--data") { Description = "The data handle (JSON).", Required = true };
        var config = new Option<FileInfo>("--config") { Description = "The config group (JSON).", Required = true };
        var name = new Option<string>("--experiment") { Description = "The experiment's name: new in --dir (an existing one is resumed with `rapidfire resume`).", Required = true };
        var dir = DirOption();
        var settings = SettingsOption();
        var chunks = new Option<int?>("--chunks") { Description = "Chunks per epoch (default 4): how often runs hop between devices." };
        var devices = new Option<string?>("--devices") { Description = "cpu, cpu:N, cuda or cuda:I,J (default cpu)." };
        var seed = new Option<long?>("--seed") { Description = "Seed of runs without a `seed` knob (default 42)." };
        var s3Endpoint = S3Options.Endpoint();
        var serving = new ServingOptions();
        var cluster = new ClusterOptions();
        var command = new Command("fit", "Train every config of the group concurrently, chunk by chunk, with validation every epoch.")
        {
            spec, data, config, name, dir, settings, chunks, devices, seed, s3Endpoint,
        };
        serving.AddTo(command);
        cluster.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            var specPath = parse.GetValue(spec)!.FullName;
            var configPath = parse.GetValue(config)!.FullName;
            Akka.Configuration.Config? hocon;
            try
            {
                hocon = CoordinatorSettings(parse, settings, s3Endpoint, serving, cluster);
            }
            catch (ConfigException e)
            {
                return RapidFireCli.Rejected(e.Problems, stderr);
            }
            // The experiment's runtime starts (its actor system and journal: a second or more of a cold process) on the
            // other core while the inputs are checked; invalid inputs close it and remove the folder it had just made.
            var experimentsDir = parse.GetValue(dir)!.FullName;
            var newDirectory = !Directory.Exists(experimentsDir);
            var opening = Task.Run(() => new Experiment(parse.GetValue(name)!, experimentsDir, hocon));
            ExperimentInputs inputs;
            try
            {
                using var storage = S3Options.Storage(hocon);
                inputs = ExperimentInputs.Check(specPath, parse.GetValue(data)!.FullName, configPath, storage);
            }
            catch (ConfigException e)
            {
                await Discard(opening, newDirectory);
                return RapidFireCli.Rejected(e.Problems, stderr);
            }
            if (inputs.Problems.Count > 0)
            {
                await Discard(opening, newDirectory);
                ValidateCommand.Report(inputs, stdout, stderr);
                return RapidFireCli.InvalidInput;
            }
            var options = new FitOptions(parse.GetValue(chunks), parse.GetValue(devices), parse.GetValue(seed));
            try
            {
                // On a cluster a run asking for more devices than this node has waits for a worker that has them.
                if (!ClusterOptions.IsCluster(hocon) &&
                    Experiment.DeviceProblems(inputs.Runs, options.Devices ?? Actors.RuntimeSettings.From(hocon ?? Akka.Configuration.Config.Empty).Devices) is { Count: > 0 } problems)
                {
                    await Discard(opening, newDirectory);
                    return RapidFireCli.Rejected(problems, stderr);
                }
            }
            catch (ConfigException e)
            {
                await Discard(opening, newDirectory);
                return RapidFireCli.Rejected(e.Problems, stderr);
            }
            return await Watch(() => opening.GetAwaiter().GetResult(),
                _ => Task.FromResult(inputs.Runs),
                experiment => experiment.RunCheckedFitAsync(SpecSource.FromFile(specPath), inputs, options, cancellation),
                serving, parse, hocon, stdout, stderr);
        });
        return command;
    }

    /// <summary>
    /// Closes an experiment opened for a fit that will not run, and removes the folder it made (it was new), and the
    /// experiments directory with its lock file when this fit made that too.
    /// </summary>
    private static async Task Discard(Task<Experiment> opening, bool newDirectory)
    {
        try
        {
            var experiment = await opening;
            experiment.Dispose();
            Directory.Delete(experiment.Path, recursive: true);
            var parent = Path.GetDirectoryName(experiment.Path)!;
            if (newDirectory && Directory.EnumerateFileSystemEntries(parent).All(e => DirectoryLock.Files.Contains(Path.GetFileName(e))))
                Directory.Delete(parent, recursive: true);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or RapidFireException)
        {
            // it did not open (its name exists, the directory is busy...): nothing to close
        }
    }

    /// <summary>The <c>resume</c> command: finishes the fit a crash interrupted, with the same live table.</summary>
    public static Command CreateResume(TextWriter stdout, TextWriter stderr)
    {
        var name = new Option<string>("--experiment") { Description = "The experiment to resume.", Required = true };
        var dir = DirOption();
        var settings = SettingsOption();
        var s3Endpoint = S3Options.Endpoint();
        var serving = new ServingOptions();
        var cluster = new ClusterOptions();
        var fromCheckpoints = new Option<bool>("--from-checkpoints")
        {
            Description = "The journal is lost or cannot be read: rebuild the fit from fit.json and each run's newest valid checkpoint " +
                          "(the old journal and metric files are kept, renamed), say what was recovered and lost, and continue.",
        };
        var command = new Command("resume", "Continue an interrupted fit from the last completed chunk of every run.") { name, dir, settings, s3Endpoint, fromCheckpoints };
        serving.AddTo(command);
        cluster.AddTo(command);
        command.SetAction(async (parse, cancellation) =>
        {
            Akka.Configuration.Config? hocon;
            try
            {
                hocon = CoordinatorSettings(parse, settings, s3Endpoint, serving, cluster);
            }
            catch (ConfigException e)
            {
                return RapidFireCli.Rejected(e.Problems, stderr);
            }
            var rebuild = parse.GetValue(fromCheckpoints);
            return await Watch(() => rebuild
                    ? Recovered(Experiment.RecoverFromCheckpoints(parse.GetValue(name)!, parse.GetValue(dir)!.FullName, hocon), stdout)
                    : Experiment.Resume(parse.GetValue(name)!, parse.GetValue(dir)!.FullName, hocon),
                async experiment => experiment.Recovery is { } plan
                    ? plan.Manifest.Runs.Select(r => plan.States.TryGetValue(r.RunId, out var s) ? s.Config : r.Config).ToList()
                    : (await experiment.StateAsync()).Resumable?.Runs.Select(r => r.Config).ToList() ?? [],
                experiment => experiment.ResumeFitAsync(cancellation),
                serving, parse, hocon, stdout, stderr);
        });
        return command;
    }

    /// <summary>Prints what a recovery from checkpoints recovered and lost, before it trains.</summary>
    private static Experiment Recovered(Experiment experiment, TextWriter stdout)
    {
        foreach (var line in experiment.Recovery!.Report) stdout.WriteLine($"recovery: {line}");
        return experiment;
    }

    internal static Option<DirectoryInfo> DirOption() => new("--dir")
    {
        Description = "The experiments directory.",
        DefaultValueFactory = _ => new DirectoryInfo(Experiment.DefaultDirectory),
    };

    /// <summary>
    /// The options of <c>fit</c> and <c>resume</c> about what the running experiment serves and exports: its HTTP API and
    /// dashboard (port, address), Parquet tables and the MLflow exporter.
    /// </summary>
    private sealed class ServingOptions
    {
        private static void Port(System.CommandLine.Parsing.OptionResult result, string option)
        {
            if (result.GetValueOrDefault<int?>() is < 0 or > 65535) result.AddError($"{option} must be 0 to 65535");
        }

        public Option<int?> ApiPort { get; } = new("--api-port")
        {
            Description = "The port of the experiment's HTTP API and dashboard, which `rapidfire runs` uses (default 0: a free port).",
            Validators = { result => Port(result, "--api-port") },
        };

        public Option<int?> Dashboard { get; } = new("--dashboard")
        {
            Description = "Serve the web dashboard (always served with the API) on this port; without a port, a free one. Prints its address.",
            Arity = ArgumentArity.ZeroOrOne,
            Validators = { result => Port(result, "--dashboard") },
        };

        public Option<string?> Address { get; } = new("--api-address")
        {
            Description = "Where the API and dashboard listen (default 127.0.0.1). Any other address requires an access token: " +
                          "RAPIDFIRE_API_TOKEN, rapidfire.api.token, or one generated and printed at start.",
        };

        public Option<bool> Parquet { get; } = new("--parquet") { Description = "Also write runs.parquet and metrics/run-N.*.parquet beside the CSVs." };

        public Option<string?> Mlflow { get; } = new("--mlflow") { Description = "An MLflow tracking server to export the runs to (default: $MLFLOW_TRACKING_URI)." };

        public void AddTo(Command command)
        {
            command.Options.Add(ApiPort);
            command.Options.Add(Dashboard);
            command.Options.Add(Address);
            command.Options.Add(Parquet);
            command.Options.Add(Mlflow);
        }

        /// <summary>The runtime settings with what these options change (Parquet tables).</summary>
        public Akka.Configuration.Config? Settings(System.CommandLine.ParseResult parse, Akka.Configuration.Config? settings) =>
            parse.GetValue(Parquet) ? Export.ParquetTables.Enable(settings) : settings;

        /// <summary>Where the server listens: the settings' <c>rapidfire.api</c>, then these options.</summary>
        public ApiServerOptions Server(System.CommandLine.ParseResult parse, Akka.Configuration.Config? settings)
        {
            // Beyond loopback with no configured token, one is generated and printed at start.
            var options = ApiServerOptions.From(settings) with { GenerateToken = true };
            var port = parse.GetValue(Dashboard) ?? parse.GetValue(ApiPort);
            if (port is { } p) options = options with { Port = p };
            if (parse.GetValue(Address) is { } address) options = options with { Address = address };
            return options;
        }

        public bool ShowDashboard(System.CommandLine.ParseResult parse) => parse.GetResult(Dashboard) is not null;
    }

    internal static Option<FileInfo?> SettingsOption() => new("--settings")
    {
        Description = "A HOCON file overriding the runtime settings (e.g. rapidfire.journal for PostgreSQL, rapidfire.s3, rapidfire.checkpoints.location), or a profile of config/: embedded, cluster, postgres.",
    };

    /// <summary>
    /// The settings of the experiment's node for <c>fit</c> and <c>resume</c>: <c>--settings</c>, then the S3 endpoint,
    /// the serving options and the cluster options over it. A bad value is a <see cref="ConfigException"/>.
    /// </summary>
    private static Akka.Configuration.Config? CoordinatorSettings(System.CommandLine.ParseResult parse, Option<FileInfo?> settings,
        Option<string?> s3Endpoint, ServingOptions serving, ClusterOptions cluster) =>
        cluster.Apply(parse, serving.Settings(parse, S3Options.Apply(parse, s3Endpoint, Settings(parse.GetValue(settings)))), "coordinator");

    /// <summary>
    /// The settings of a command: the file given with <c>--settings</c> (HOCON, or a profile name of config/), under
    /// <c>appsettings.json</c> and the <c>RAPIDFIRE__</c>/<c>AKKA__</c> environment variables (see
    /// <see cref="Configuration.RapidFireConfiguration"/>).
    /// </summary>
    internal static Akka.Configuration.Config? Settings(FileInfo? file) =>
        Configuration.RapidFireConfiguration.Load(file is null ? [] : [File.Exists(file.FullName) ? file.FullName : file.ToString()]) is { IsEmpty: false } loaded
            ? loaded
            : null;

    /// <summary>
    /// Opens the experiment, serves its HTTP API, runs the operation with a live table, prints the final table; returns
    /// the exit code.
    /// </summary>
    private static async Task<int> Watch(Func<Experiment> open, Func<Experiment, Task<IReadOnlyList<Config>>> runsOf,
        Func<Experiment, Task<FitResult>> operation, ServingOptions serving, System.CommandLine.ParseResult parse,
        Akka.Configuration.Config? settings, TextWriter stdout, TextWriter stderr)
    {
        var console = ConsoleFor(stdout);
        ApiServerOptions serverOptions;
        Export.MlflowOptions? mlflow;
        try
        {
            serverOptions = serving.Server(parse, settings);
            mlflow = Export.MlflowOptions.Resolve(parse.GetValue(serving.Mlflow));
        }
        catch (Exception e) when (e is ArgumentException or ConfigException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return RapidFireCli.InvalidInput;
        }
        var interactive = console.Profile.Capabilities.Interactive;
        var work = new ProgressBoard();
        Experiment experiment;
        try
        {
            experiment = open();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or RapidFireException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return CouldNotStart;
        }

        using (experiment)
        {
            FitResult result;
            RunBoard board;
            ApiServer? api = null;
            Export.MlflowExporter? exporter = null;
            try
            {
                var runs = await runsOf(experiment);
                board = new RunBoard(runs);
                experiment.Progress += board.Take;
                // Its warnings go to experiment.log; on a plain output also to stderr (a live table would be garbled).
                if (mlflow is not null) exporter = Export.MlflowExporter.Attach(experiment, mlflow, interactive ? null : stderr.WriteLine);
                // Long work reports to one sink: the live board on a terminal, throttled plain lines otherwise.
                IProgress<ProgressUpdate> sink = interactive ? work : new ProgressLog(stdout);
                experiment.Progress += new TrainingProgress.Feed(sink).Take;
                if (!interactive) experiment.Progress += e => RunBoard.Log(e, stdout);
                console.WriteLine($"experiment {experiment.Name}: {runs.Count} runs ({experiment.Path})");
                string CannotListen(string why) =>
                    $"error: the HTTP API could not listen on {serverOptions.Address}:{serverOptions.Port}: {why} (port 0 picks a free port)";
                if (ApiServer.PortProblem(serverOptions) is { } taken)
                {
                    stderr.WriteLine(CannotListen(taken));
                    return CouldNotStart;
                }
                // The server starts beside the fit, not before it: its start is off the way to the first minibatch.
                var listening = Task.Run(() => ApiServer.StartAsync(experiment, serverOptions));
                var fit = operation(experiment);
                try
                {
                    api = await listening;
                }
                catch (IOException e)
                {
                    // The port was taken since it was checked: nothing may train unwatched.
                    experiment.Cancel();
                    await fit.ContinueWith(_ => { }, TaskScheduler.Default);
                    stderr.WriteLine(CannotListen(e.Message));
                    return CouldNotStart;
                }
                if (experiment.ClusterAddress is { } address)
                    console.WriteLine($"cluster: {address} (workers join with `rapidfire worker --seed-nodes {address}`)");
                console.WriteLine($"api: {api.ListenUrl}");
                console.WriteLine($"dashboard: {api.BrowserUrl}");
                if (api.TokenGenerated)
                    console.WriteLine($"access token: {api.Token} (every request needs it; `rapidfire runs` reads it from {Path.Combine(experiment.Path, ApiToken.FileName)})");
                if (interactive)
                    // Redrawn in place; cleared at the end, where the final table takes its place. The bars of all
                    // work come first so that a table taller than the terminal is what gets cut.
                    await console.Live(board.LiveView(work)).AutoClear(true).Overflow(VerticalOverflow.Ellipsis).StartAsync(async live =>
                    {
                        while (!fit.IsCompleted)
                        {
                            live.UpdateTarget(board.LiveView(work));
                            await Task.WhenAny(fit, Task.Delay(250, CancellationToken.None));
                        }
                    });
                result = await fit;
                if (exporter is not null) await exporter.FlushAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is RapidFireException or InvalidOperationException)
            {
                var problems = e is RapidFireException r ? r.Problems : [e.Message];
                foreach (var problem in problems) stderr.WriteLine($"error: {problem}");
                return CouldNotStart;
            }
            finally
            {
                // The fit is over: `rapidfire runs` reads runs.csv from here on (the host file goes with the server).
                if (api is not null) await api.DisposeAsync();
                if (exporter is not null) await exporter.DisposeAsync();
            }

            if (result.Interrupted is { } why)
            {
                console.Write(board.Table(result.Runs));
                stderr.WriteLine($"error: the fit was interrupted: {why}");
                foreach (var (file, problem) in experiment.UnwrittenFiles) stderr.WriteLine($"error: {file} was not written: {problem}");
                stderr.WriteLine("every completed chunk is kept in the journal: free some space, then continue the fit with " +
                                 $"`rapidfire resume --experiment {experiment.Name} --dir {System.IO.Path.GetDirectoryName(experiment.Path)}`");
                return Interrupted;
            }
            // A fit that ran to its end ends the experiment (its artifacts stay); a cancelled one stays open.
            if (!result.Cancelled) experiment.End();
            console.Write(board.Table(result.Runs));
            console.WriteLine(result.Cancelled ? "fit cancelled" : "fit done");
            console.WriteLine($"runs:    {Path.Combine(experiment.Path, "runs.csv")}");
            console.WriteLine($"metrics: {Path.Combine(experiment.Path, "metrics")}");
            return RapidFireCli.Ok;
        }
    }

    internal static IAnsiConsole ConsoleFor(TextWriter writer)
    {
        var isTerminal = writer == Console.Out && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = isTerminal ? AnsiSupport.Detect : AnsiSupport.No,
            Interactive = isTerminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!isTerminal) console.Profile.Width = 160;
        return console;
    }
}
