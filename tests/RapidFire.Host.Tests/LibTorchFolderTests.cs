using System.Runtime.InteropServices;
using RapidFire.Spec.Native;

namespace RapidFire.Host.Tests;

/// <summary>
/// <c>RAPIDFIRE_LIBTORCH_DIR</c>: the program loads libtorch from that folder instead of the backend package's (a
/// machine's own CUDA libtorch, issue 19). Tested with the CPU libtorch in another folder (hard links where they can be: the same
/// files under other paths), through <c>rapidfire info</c>, which lists the libtorch files the process mapped.
/// </summary>
public sealed class LibTorchFolderTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("rf-libtorch-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static readonly string Native = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");

    [DllImport("libc", SetLastError = true)]
    private static extern int link(string existing, string added);

    private static Dictionary<string, string> Pointing(string dir) => new() { [TorchNative.LibTorchDirVariable] = dir };

    [Fact]
    public async Task The_program_runs_on_the_libtorch_of_the_folder_the_variable_names()
    {
        foreach (var file in Directory.GetFiles(Native).Where(f => Path.GetFileName(f) is var n && (n.StartsWith("libtorch") || n.StartsWith("libc10") || n.StartsWith("libgomp"))))
            if (link(file, Path.Combine(folder, Path.GetFileName(file))) != 0)
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file))); // another file system: a copy (500 MB)

        var (code, output) = await ChildCli.RunAsync(Pointing(folder), "info");

        Assert.True(code == 0, output);
        Assert.Contains($"libtorch from {folder} ({TorchNative.LibTorchDirVariable})", output);
        var loaded = output.Split('\n').Where(l => l.StartsWith("loaded:")).Select(l => l["loaded:".Length..].Trim()).ToList();
        var libtorch = loaded.Where(p => !Path.GetFileName(p).StartsWith("libLibTorchSharp")).ToList();
        Assert.Contains(Path.Combine(folder, "libtorch_cpu.so"), libtorch);
        Assert.All(libtorch, p => Assert.StartsWith(folder + "/", p)); // none from the package's folder
        Assert.Contains("cuda:       not available", output);

        // and without the variable, the package's own
        var (plainCode, plain) = await ChildCli.RunAsync("info");
        Assert.Equal(0, plainCode);
        Assert.Contains(Path.Combine(Native, "libtorch_cpu.so"), plain);
    }

    [Fact]
    public async Task The_setting_names_the_folder_too_and_the_variable_wins_over_it()
    {
        foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so", "libgomp-98b21ff3.so.1" })
            if (link(Path.Combine(Native, lib), Path.Combine(folder, lib)) != 0)
                File.Copy(Path.Combine(Native, lib), Path.Combine(folder, lib));
        var settings = Path.Combine(folder, "gpu.conf");
        File.WriteAllText(settings, $"rapidfire.libtorch-dir = \"{folder}\"");

        var (code, output) = await ChildCli.RunAsync("info", "--settings", settings);
        Assert.True(code == 0, output);
        Assert.Contains($"libtorch from {folder} ({TorchNative.LibTorchDirSetting})", output);
        Assert.Contains(Path.Combine(folder, "libtorch_cpu.so"), output);

        // the variable wins: here it names a folder that is not one, and that is what stops the program
        var (refused, why) = await ChildCli.RunAsync(Pointing(Path.Combine(folder, "nowhere")), "info", "--settings", settings);
        Assert.Equal(2, refused);
        Assert.Contains($"{TorchNative.LibTorchDirVariable}={Path.Combine(folder, "nowhere")}: no such folder", why);

        File.WriteAllText(settings, $"rapidfire.libtorch-dir = \"{Path.Combine(folder, "elsewhere")}\"");
        (refused, why) = await ChildCli.RunAsync("validate", "--spec", "x.cs", "--data", "x.json", "--config", "x.json", "--settings", settings);
        Assert.Equal(2, refused);
        Assert.Contains($"{TorchNative.LibTorchDirSetting}={Path.Combine(folder, "elsewhere")}: no such folder", why);
    }

    [Fact]
    public async Task A_folder_without_libtorch_or_no_folder_at_all_is_named_and_the_program_exits_2()
    {
        File.WriteAllText(Path.Combine(folder, "libc10.so"), "not a library");
        var (code, output) = await ChildCli.RunAsync(Pointing(folder), "info");
        Assert.Equal(2, code);
        Assert.Contains($"error: cannot load libtorch: {TorchNative.LibTorchDirVariable}={folder}: the folder has no libtorch_cpu.so, libtorch.so", output);

        var missing = Path.Combine(folder, "nowhere");
        (code, output) = await ChildCli.RunAsync(Pointing(missing), "fit", "--help");
        Assert.Equal(2, code);
        Assert.Contains($"{TorchNative.LibTorchDirVariable}={missing}: no such folder", output);
    }

    [Fact]
    public async Task A_file_in_the_folder_that_does_not_load_is_named()
    {
        foreach (var lib in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
            File.WriteAllText(Path.Combine(folder, lib), "not a library");
        var (code, output) = await ChildCli.RunAsync(Pointing(folder), "info");
        Assert.Equal(2, code);
        Assert.Contains($"{TorchNative.LibTorchDirVariable}={folder}: libc10.so there does not load", output);
    }
}
