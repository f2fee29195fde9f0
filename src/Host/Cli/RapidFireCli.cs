using Spectre.Console;
using System.CommandLine;

namespace RapidFire.Host.Cli;

/// <summary>The verbs of the <c>rapidfire</c> program.</summary>
public static class RapidFireCli
{
    /// <summary>Exit code of a command that ran.</summary>
    public const int Ok = 0;
    /// <summary>Exit code when the input was rejected (bad spec, data handle or config).</summary>
    public const int InvalidInput = 1;

    /// <summary>Prints each problem of rejected input as an <c>error:</c> line; returns <see cref="InvalidInput"/>.</summary>
    internal static int Rejected(IEnumerable<string> problems, TextWriter stderr)
    {
        foreach (var problem in problems) stderr.WriteLine($"error: {problem}");
        return InvalidInput;
    }

    /// <summary>
    /// The <c>rapidfire</c> program's entry (src/Host's build and the RapidFire.Cli tool): prepares TorchSharp's native
    /// libraries from the program's own folder, then runs the verb on the console; returns the exit code.
    /// </summary>
    public static int RunConsole(string[] args)
    {
        try
        {
            RapidFire.Spec.Native.TorchNative.UseLibTorch(LibTorchSetting(args));
            RapidFire.Spec.Native.TorchNative.EnsureLoaded();
        }
        catch (DllNotFoundException e)
        {
            Console.Error.WriteLine($"error: cannot load libtorch: {e.Message}");
            return FitCommand.CouldNotStart; // 2: could not start, as fit says it
        }
        return Run(args, Console.Out, Console.Error);
    }

    /// <summary>
    /// <c>rapidfire.libtorch-dir</c> of the command's settings (its <c>--settings</c>, appsettings.json, the
    /// <c>RAPIDFIRE__</c> variables), read before any torch; null when unset or when the settings do not read (the command
    /// then reports why).
    /// </summary>
    private static string? LibTorchSetting(string[] args)
    {
        var at = Array.IndexOf(args, "--settings");
        try
        {
            return FitCommand.Settings(at >= 0 && at + 1 < args.Length ? new FileInfo(args[at + 1]) : null)
                ?.GetString(RapidFire.Spec.Native.TorchNative.LibTorchDirSetting, null) is { Length: > 0 } dir ? dir : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }

    /// <summary>Parses <paramref name="args"/> and runs the verb, writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("RapidFire.NET: train many configs of one MLSpec concurrently and compare them early.")
        {
            ValidateCommand.Create(stdout, stderr),
            FitCommand.Create(stdout, stderr),
            FitCommand.CreateResume(stdout, stderr),
            WorkerCommand.Create(stdout, stderr),
            RunsCommand.Create(stdout, stderr),
            PlotCommand.Create(stdout, stderr),
            DashboardCommand.Create(stdout, stderr),
            EvaluateCommand.CreateTest(stdout, stderr),
            EvaluateCommand.CreatePredict(stdout, stderr),
            InfoCommand.Create(stdout),
        };
        return root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    /// <summary>A console over <paramref name="writer"/>: ANSI and live redraws on a terminal only, 160 columns otherwise.</summary>
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
