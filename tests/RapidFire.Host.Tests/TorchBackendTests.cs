using System.Diagnostics;
using System.Text.Json;

namespace RapidFire.Host.Tests;

/// <summary>
/// The libtorch backend is an MSBuild property (issue 8): <c>TorchBackendPackage</c> picks the TorchSharp backend package
/// that the programs (the CLI, the tool, the tests) reference; the libraries reference the managed TorchSharp only, so
/// that a package user picks the backend (issue 17). Only evaluated (<c>dotnet msbuild -getItem</c>), never restored:
/// the CUDA package is not served by this machine's package mirror.
/// </summary>
public class TorchBackendTests
{
    private static readonly string SpecProject = Path.Combine(RepoPaths.Root, "src", "Spec", "RapidFire.Spec.csproj");
    private static readonly string CliProject = Path.Combine(RepoPaths.Root, "src", "Host", "RapidFire.Host.csproj");

    [Fact]
    public async Task The_libraries_reference_the_managed_TorchSharp_and_no_backend()
    {
        var items = await Evaluate(SpecProject);

        Assert.Contains("TorchSharp", items.References);
        Assert.DoesNotContain("TorchSharp-cpu", items.References);
        Assert.DoesNotContain("TorchSharp-cuda-linux", items.References);
        // the managed package is the backends' version: a CUDA user adds TorchSharp-cuda-linux of that version
        Assert.Equal(items.Versions["TorchSharp-cpu"], items.Versions["TorchSharp"]);
    }

    [Fact]
    public async Task The_default_backend_is_TorchSharp_cpu()
    {
        var items = await Evaluate(CliProject);

        Assert.Contains("TorchSharp-cpu", items.References);
        Assert.DoesNotContain("TorchSharp-cuda-linux", items.References);
    }

    [Fact]
    public async Task TorchBackendPackage_switches_the_package_to_TorchSharp_cuda_linux_of_the_same_version()
    {
        var items = await Evaluate(CliProject, "-p:TorchBackendPackage=TorchSharp-cuda-linux");

        Assert.Contains("TorchSharp-cuda-linux", items.References);
        Assert.DoesNotContain("TorchSharp-cpu", items.References);
        // Central package management must know a version for it, the same TorchSharp as the cpu build.
        Assert.True(items.Versions.ContainsKey("TorchSharp-cuda-linux"), "Directory.Packages.props has no PackageVersion for TorchSharp-cuda-linux");
        Assert.Equal(items.Versions["TorchSharp-cpu"], items.Versions["TorchSharp-cuda-linux"]);
    }

    private sealed record Items(IReadOnlyList<string> References, IReadOnlyDictionary<string, string> Versions);

    /// <summary>The project's PackageReference and PackageVersion items, as MSBuild evaluates them with <paramref name="properties"/>.</summary>
    private static async Task<Items> Evaluate(string project, params string[] properties)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepoPaths.Root,
        };
        foreach (var arg in new[] { "msbuild", project, "-nologo", "-getItem:PackageReference", "-getItem:PackageVersion" }.Concat(properties))
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet msbuild");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            await process.WaitForExitAsync(timeout.Token);
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"dotnet msbuild exited {process.ExitCode}: {output}{await stderr}");

        using var json = JsonDocument.Parse(output);
        var items = json.RootElement.GetProperty("Items");
        var references = items.GetProperty("PackageReference").EnumerateArray()
            .Select(i => i.GetProperty("Identity").GetString()!).ToList();
        var versions = items.GetProperty("PackageVersion").EnumerateArray()
            .ToDictionary(i => i.GetProperty("Identity").GetString()!, i => i.GetProperty("Version").GetString()!);
        return new Items(references, versions);
    }
}
