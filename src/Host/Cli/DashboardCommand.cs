using System.CommandLine;
using RapidFire.Host.Api;
using RapidFire.Spec;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire dashboard --experiment NAME [--dir DIR] [--port P]</c>: serves the web dashboard (and the HTTP API) of an
/// experiment that is not running, from its journal, until Ctrl+C. Of a running experiment it prints the address of the
/// dashboard its fit already serves.
/// </summary>
/// <remarks>Exit codes: 0 when it served until stopped (or the experiment is running elsewhere); 2 when the experiment
/// does not exist, cannot be opened (another experiment is active in its directory) or the port is taken.</remarks>
public static class DashboardCommand
{
    /// <summary>Exit code when there is nothing to serve.</summary>
    public const int CouldNotServe = 2;

    private static readonly TimeSpan LivenessTimeout = TimeSpan.FromSeconds(3);

    /// <summary>The <c>dashboard</c> command.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Option<string>("--experiment") { Description = "The experiment's name.", Required = true };
        var dir = FitCommand.DirOption();
        var port = new Option<int>("--port")
        {
            Description = "The loopback port to serve it on (default 0: a free port).",
            DefaultValueFactory = _ => 0,
            Validators = { result => { if (result.GetValueOrDefault<int>() is < 0 or > 65535) result.AddError("--port must be 0 to 65535"); } },
        };
        var command = new Command("dashboard", "Serve the web dashboard of an experiment that is not running (its runs, metrics and logs), until Ctrl+C.")
        {
            name, dir, port,
        };
        command.SetAction((parse, cancellation) =>
            ServeAsync(parse.GetValue(name)!, parse.GetValue(dir)!.FullName, parse.GetValue(port), stdout, stderr, cancellation));
        return command;
    }

    /// <summary>
    /// Serves the dashboard of experiment <paramref name="name"/> in <paramref name="directory"/> until
    /// <paramref name="cancellation"/> (Ctrl+C); prints its URL first. Returns the exit code.
    /// </summary>
    public static async Task<int> ServeAsync(string name, string directory, int port, TextWriter stdout, TextWriter stderr,
        CancellationToken cancellation)
    {
        var folder = Path.Combine(directory, name);
        if (string.IsNullOrWhiteSpace(name) || name.Any(c => !(char.IsLetterOrDigit(c) || c is '-' or '_' or '.')) || name is "." or "..")
            return Fail(stderr, $"experiment name '{name}' must be letters, digits, '-', '_' or '.'");
        if (!Directory.Exists(folder)) return Fail(stderr, $"there is no experiment {name} in {directory} (no folder {folder})");
        if (await HostFile.FindLiveAsync(folder, LivenessTimeout, cancellation) is { } host)
        {
            stdout.WriteLine($"experiment {name} is running (process {host.Pid}); its dashboard: {host.Url}/");
            return RapidFireCli.Ok;
        }

        Experiment experiment;
        try
        {
            experiment = Experiment.Open(name, directory);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException or RapidFireException)
        {
            return Fail(stderr, $"experiment {name} cannot be opened: {e.Message}");
        }
        using (experiment)
        {
            ApiServer api;
            try
            {
                api = await ApiServer.StartAsync(experiment, port);
            }
            catch (IOException e)
            {
                return Fail(stderr, $"the dashboard could not listen on port {port}: {e.Message} (--port 0 picks a free port)");
            }
            await using (api)
            {
                stdout.WriteLine($"dashboard: {api.Url}/ (experiment {name}, not running; Ctrl+C stops serving it)");
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellation);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl+C: stop serving.
                }
            }
        }
        return RapidFireCli.Ok;
    }

    private static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"error: {message}");
        return CouldNotServe;
    }
}
