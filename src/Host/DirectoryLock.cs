namespace RapidFire.Host;

/// <summary>
/// One experiment is active per experiments directory, across processes: an exclusive lock on a file in it (released
/// by the system if the process dies). Who holds it is written beside it: the held lock file cannot be read by another process.
/// </summary>
internal static class DirectoryLock
{
    /// <summary>The lock file of an experiments directory (held while an experiment is active) and the file naming its holder.</summary>
    public static readonly string[] Files = [".rapidfire.lock", ".rapidfire.owner"];

    /// <summary>Takes <paramref name="directory"/>'s lock for experiment <paramref name="name"/>; a held one is refused, naming its holder.</summary>
    public static FileStream Take(string directory, string name)
    {
        var path = Path.Combine(directory, Files[0]);
        var ownerFile = Path.Combine(directory, Files[1]);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            string owner;
            try
            {
                owner = File.ReadAllText(ownerFile).Trim();
            }
            catch (IOException)
            {
                owner = "its owner is not recorded";
            }
            throw new InvalidOperationException($"another experiment is active in {Path.GetFullPath(directory)} ({owner}); one experiment runs per directory at a time");
        }
        File.WriteAllText(ownerFile, $"experiment '{name}', process {Environment.ProcessId}, since {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC\n");
        return stream;
    }
}
