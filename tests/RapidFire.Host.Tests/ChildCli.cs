using System.Diagnostics;
using System.Text;

namespace RapidFire.Host.Tests;

/// <summary>The `rapidfire` program as a real child process (built next to the tests), for crash tests.</summary>
internal sealed class ChildCli : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();

    private ChildCli(IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoPaths.Root,
        };
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rapidfire.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        process = Process.Start(start) ?? throw new InvalidOperationException("could not start rapidfire");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static ChildCli Start(params string[] args) => new(args);

    /// <summary>Starts the program with <paramref name="environment"/> added to this process's variables.</summary>
    public static ChildCli Start(IReadOnlyDictionary<string, string> environment, params string[] args) => new(args, environment: environment);

    /// <summary>Starts the program in <paramref name="workingDirectory"/> instead of the repository.</summary>
    public static ChildCli StartIn(string workingDirectory, params string[] args) => new(args, workingDirectory);

    /// <summary>Starts the program in <paramref name="workingDirectory"/> with <paramref name="environment"/> added.</summary>
    public static ChildCli StartIn(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        new(args, workingDirectory, environment);

    /// <summary>Runs the program to its end; returns its exit code and output.</summary>
    public static Task<(int Code, string Output)> RunAsync(params string[] args) => RunAsync(new Dictionary<string, string>(), args);

    /// <summary>Runs the program to its end with <paramref name="environment"/> added; returns its exit code and output.</summary>
    public static async Task<(int Code, string Output)> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var child = Start(environment, args);
        return (await child.WaitAsync(TimeSpan.FromMinutes(3)), child.Output);
    }

    public string Output
    {
        get { lock (output) return output.ToString(); }
    }

    public async Task<int> WaitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(cancel.Token);
        process.WaitForExit(); // drains the redirected output
        return process.ExitCode;
    }

    /// <summary>SIGKILL: no shutdown code of the child runs.</summary>
    public void Kill()
    {
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
    }

    /// <summary>SIGINT, as Ctrl+C in a terminal sends it.</summary>
    public void Interrupt()
    {
        using var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public bool HasExited => process.HasExited;

    public void Dispose()
    {
        if (!process.HasExited) Kill();
        process.Dispose();
    }
}
