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
    /// The local folder in which all the files below <paramref name="folder"/> can be opened: the folder itself for a
    /// local locator; for remote storage, a local copy of the whole folder (how a <c>misc</c> folder is read).
    /// </summary>
    /// <exception cref="DataException">The folder does not exist or its kind of locator is not supported.</exception>
    string GetLocalDirectory(Locator folder);

    /// <summary>
    /// The local folder object paths below <paramref name="folder"/> resolve in, without bringing any file there: the
    /// folder itself for a local locator; for remote storage, the local copy that <see cref="FetchObjects"/> fills.
    /// </summary>
    /// <exception cref="DataException">The folder cannot be used (does not exist, cannot be read).</exception>
    string GetObjectsDirectory(Locator folder) => GetLocalDirectory(folder);

    /// <summary>
    /// Makes the object files <paramref name="relativePaths"/> (normalized, see <see cref="ObjectPath"/>) below
    /// <paramref name="folder"/> available under <see cref="GetObjectsDirectory"/>: nothing to do for local files; a
    /// remote storage downloads them. Returns the paths that could not be made available, each with why; the rows
    /// naming them fail when read, the others are unaffected.
    /// </summary>
    IReadOnlyDictionary<string, string> FetchObjects(Locator folder, IReadOnlyCollection<string> relativePaths) =>
        System.Collections.ObjectModel.ReadOnlyDictionary<string, string>.Empty;
}

/// <summary>The storage RapidFire uses unless told otherwise.</summary>
public static class DataStorage
{
    /// <summary>
    /// The default storage: the local file system. S3 locators need an <see cref="S3.S3DataStorage"/> (the experiment
    /// runtime and the CLI use one, configured by <c>rapidfire.s3</c>); pass one to <see cref="DataHandle.Open"/>.
    /// </summary>
    public static IDataStorage Default => LocalDataStorage.Instance;

    /// <summary>The error for a locator whose kind of storage is not available: it names the locator.</summary>
    public static DataException NotSupported(Locator locator) => locator is S3Locator
        ? new DataException(locator.ToString(), null,
            "S3 locators need an S3 storage: pass an S3DataStorage to DataHandle.Open (experiments and the rapidfire CLI use one)")
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
