using System.Diagnostics;

namespace RapidFire.Host.Tests;

/// <summary>
/// A small tmpfs mounted on a temporary folder, for faults of a full disk. Mounting needs root (CI runs the suite as
/// root); elsewhere the test is skipped, saying why. <see cref="Grow"/> frees space as a user would, without touching
/// the files.
/// </summary>
internal sealed class SmallDisk : IDisposable
{
    private SmallDisk(string path) => Path = path;

    /// <summary>The mounted folder.</summary>
    public string Path { get; }

    /// <summary>A tmpfs of <paramref name="kilobytes"/> KB, or the test is skipped with the reason it cannot be mounted.</summary>
    public static SmallDisk Mount(long kilobytes)
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "a tmpfs needs Linux");
        Skip.IfNot(Environment.UserName == "root", $"mounting a tmpfs needs root; this test runs as {Environment.UserName}");
        var path = Directory.CreateTempSubdirectory("rf-small-disk-").FullName;
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", $"size={kilobytes}k", "tmpfs", path);
        if (code != 0) Directory.Delete(path);
        Skip.If(code != 0, $"`mount -t tmpfs` failed here (rc {code}): {output.Trim()}");
        return new SmallDisk(path);
    }

    /// <summary>Resizes the file system to <paramref name="kilobytes"/> KB, keeping its files: space is freed.</summary>
    public void Grow(long kilobytes)
    {
        var (code, output) = Run("mount", "-o", $"remount,size={kilobytes}k", Path);
        Assert.True(code == 0, $"remount of {Path} failed: {output}");
    }

    public void Dispose()
    {
        Run("umount", "-l", Path);
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // still busy: the temporary folder stays
        }
    }

    private static (int Code, string Output) Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
