namespace RapidFire.Spec.Data;

/// <summary>
/// Reads the files a data handle points at. The runtime reads ESFs and finds object files only through this
/// interface, so that a storage for S3 locators can plug in beside the local one.
/// </summary>
public interface IDataStorage
{
    /// <summary>Opens a file for reading.</summary>
    /// <exception cref="DataException">The file does not exist, cannot be read, or its kind of locator is not supported;
    /// the error names the locator.</exception>
    Stream OpenRead(Locator file);

    /// <summary>Whether a file exists at <paramref name="file"/>.</summary>
    /// <exception cref="DataException">The kind of locator is not supported.</exception>
    bool FileExists(Locator file);

    /// <summary>
    /// The local folder in which the files below <paramref name="folder"/> can be opened: the folder itself for a
    /// local locator; for remote storage, the local copy the runtime downloads object files to.
    /// </summary>
    /// <exception cref="DataException">The folder does not exist or its kind of locator is not supported.</exception>
    string GetLocalDirectory(Locator folder);
}

/// <summary>The storage RapidFire uses unless told otherwise.</summary>
public static class DataStorage
{
    /// <summary>The default storage: the local file system (S3 locators are refused until S3 support lands).</summary>
    public static IDataStorage Default => LocalDataStorage.Instance;

    /// <summary>The error for a locator whose kind of storage is not available: it names the locator.</summary>
    public static DataException NotSupported(Locator locator) => locator is S3Locator
        ? new DataException(locator.ToString(), null,
            "S3 locators are not supported yet; copy the data to a local folder and give its path")
        : new DataException(locator.ToString(), null, $"locators of kind {locator.GetType().Name} are not supported by this storage");
}

/// <summary>Files on the local file system. Any other kind of locator is refused with a <see cref="DataException"/>.</summary>
public sealed class LocalDataStorage : IDataStorage
{
    /// <summary>The one instance.</summary>
    public static LocalDataStorage Instance { get; } = new();

    private LocalDataStorage() { }

    /// <inheritdoc />
    public Stream OpenRead(Locator file)
    {
        var path = LocalPath(file);
        if (Directory.Exists(path))
            throw new DataException(path, null, "is a folder, not a file");
        if (!File.Exists(path))
            throw new DataException(path, null, "file not found");
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException(path, null, $"cannot be read: {e.Message}", e);
        }
    }

    /// <inheritdoc />
    public bool FileExists(Locator file) => File.Exists(LocalPath(file));

    /// <inheritdoc />
    public string GetLocalDirectory(Locator folder)
    {
        var path = LocalPath(folder);
        if (!Directory.Exists(path))
            throw new DataException(path, null, "folder not found");
        return path;
    }

    private static string LocalPath(Locator locator) =>
        locator is LocalLocator local ? local.FullPath : throw DataStorage.NotSupported(locator);
}
