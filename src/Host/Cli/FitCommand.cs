using System.CommandLine;
using RapidFire.Host.Api;
using RapidFire.Spec;
using RapidFire.Spec.Configs;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire fit --spec S.cs --data handle.json --config configs.json --experiment NAME --dir DIR [--chunks N]
/// [--devices cpu|cpu:N|cuda|cuda:I,J] [--seed S] [--s3-endpoint URL] [--dashboard [PORT]] [--api-address A] [--parquet] [--mlflow URI] [--tensorboard DIR]</c>:
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
            return await WatchedFit.RunAsync(() => opening.GetAwaiter().GetResult(),
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
            return await WatchedFit.RunAsync(() => rebuild
                    ? Recovered(Experiment.RecoverFromCheckpoints(parse.GetValue(name)!, parse.GetValue(dir)!.FullName, hocon), stdout)
                    : Experiment.Resume(parse.GetValue(name)!, parse.GetValue(dir)!.FullName, hocon),
                async experiment => experiment.Recovery is { } plan
                    ? plan.Manifest.Runs.Select(r => plan.States.TryGetValue(r.RunId, out var s) ? s.Run.Config : r.Config).ToList()
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

}
