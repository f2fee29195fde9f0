namespace RapidFire.Host.Tests;

/// <summary>Paths inside this checkout (tests use the example that ships in the repository, never ../shared).</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string MnistExample(string file) => Path.Combine(Root, "examples", "mnist", file);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RapidFire.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no RapidFire.sln above {AppContext.BaseDirectory}");
    }
}
