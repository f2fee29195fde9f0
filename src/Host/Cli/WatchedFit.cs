using RapidFire.Host.Api;
using RapidFire.Host.Cli.Progress;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Progress;
using Spectre.Console;

namespace RapidFire.Host.Cli;

/// <summary>The part of <c>fit</c> and <c>resume</c> that runs the operation: the experiment opened, its HTTP API served, the live table, the final table and exit code.</summary>
internal static class WatchedFit
{
    /// <summary>
    /// Opens the experiment, serves its HTTP API, runs the operation with a live table, prints the final table; returns
    /// the exit code.
    /// </summary>
    public static async Task<int> RunAsync(Func<Experiment> open, Func<Experiment, Task<IReadOnlyList<Config>>> runsOf,
        Func<Experiment, Task<FitResult>> operation, ServingOptions serving, System.CommandLine.ParseResult parse,
        Akka.Configuration.Config? settings, TextWriter stdout, TextWriter stderr)
    {
        var console = RapidFireCli.ConsoleFor(stdout);
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
            return FitCommand.CouldNotStart;
        }

        using (experiment)
        {
            FitResult result;
            RunBoard board;
            ApiServer? api = null;
            Export.MlflowExporter? exporter = null;
            Export.TensorBoardExporter? tensorboard = null;
            try
            {
                var runs = await runsOf(experiment);
                board = new RunBoard(runs);
                experiment.Progress += board.Take;
                // Its warnings go to experiment.log; on a plain output also to stderr (a live table would be garbled).
                if (mlflow is not null) exporter = Export.MlflowExporter.Attach(experiment, mlflow, interactive ? null : stderr.WriteLine);
                if (parse.GetValue(serving.TensorBoard) is { } logDir)
                {
                    tensorboard = Export.TensorBoardExporter.Attach(experiment, logDir, interactive ? null : stderr.WriteLine);
                    console.WriteLine($"tensorboard: {tensorboard.Directory} (`tensorboard --logdir {logDir}`)");
                }
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
                    return FitCommand.CouldNotStart;
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
                    return FitCommand.CouldNotStart;
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
                if (tensorboard is not null) await tensorboard.FlushAsync(CancellationToken.None);
            }
            catch (Exception e) when (e is RapidFireException or InvalidOperationException)
            {
                var problems = e is RapidFireException r ? r.Problems : [e.Message];
                foreach (var problem in problems) stderr.WriteLine($"error: {problem}");
                return FitCommand.CouldNotStart;
            }
            finally
            {
                // The fit is over: `rapidfire runs` reads runs.csv from here on (the host file goes with the server).
                if (api is not null) await api.DisposeAsync();
                if (exporter is not null) await exporter.DisposeAsync();
                if (tensorboard is not null) await tensorboard.DisposeAsync();
            }

            if (result.Interrupted is { } why)
            {
                console.Write(board.Table(result.Runs));
                stderr.WriteLine($"error: the fit was interrupted: {why}");
                foreach (var (file, problem) in experiment.UnwrittenFiles) stderr.WriteLine($"error: {file} was not written: {problem}");
                stderr.WriteLine("every completed chunk is kept in the journal: free some space, then continue the fit with " +
                                 $"`rapidfire resume --experiment {experiment.Name} --dir {System.IO.Path.GetDirectoryName(experiment.Path)}`");
                return FitCommand.Interrupted;
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
}
