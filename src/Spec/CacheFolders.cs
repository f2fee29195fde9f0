namespace RapidFire.Spec;

/// <summary>Where RapidFire keeps what it can rebuild (the patched native library, compiled specs, S3 downloads).</summary>
public static class CacheFolders
{
    /// <summary><c>$XDG_CACHE_HOME/rapidfire</c>, else <c>~/.cache/rapidfire</c>, else a folder in the temporary folder.</summary>
    public static string Root
    {
        get
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            var root = !string.IsNullOrEmpty(xdg) ? xdg
                : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache")
                : Path.GetTempPath();
            return Path.Combine(root, "rapidfire");
        }
    }
}
