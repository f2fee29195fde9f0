using System.Diagnostics;
using System.Text;

namespace RapidFire.Host.Tests;

/// <summary>The `rapidfire` program as a real child process (built next to the tests), for crash tests.</summary>
internal sealed class ChildCli : IDisposable
{
    private readonly Process process;
    private readonly StringBuilder output = new();

    private ChildCli(IEnumerable<string> args, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoPaths.Root,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rapidfire.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        process = Process.Start(start) ?? throw new InvalidOperationException("could not start rapidfire");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static ChildCli Start(params string[] args) => new(args);

    /// <summary>Starts the program in <paramref name="workingDirectory"/> instead of the repository.</summary>
    public static ChildCli StartIn(string workingDirectory, params string[] args) => new(args, workingDirectory);

    /// <summary>Runs the program to its end; returns its exit code and output.</summary>
    public static async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        using var child = Start(args);
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

    public bool HasExited => process.HasExited;

    public void Dispose()
    {
        if (!process.HasExited) Kill();
        process.Dispose();
    }
}
