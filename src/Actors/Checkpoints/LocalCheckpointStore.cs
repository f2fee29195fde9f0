using System.Runtime.InteropServices;

namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// Checkpoints in a local folder (the experiment's <c>checkpoints/</c>), one file per checkpoint at
/// <c>{directory}/run-{id}/e{epoch}-c{chunk}.ckpt</c> (see <see cref="CheckpointRef"/> and <see cref="CheckpointFile"/>).
/// </summary>
/// <remarks>
/// A save writes a temporary file in the run's folder (<c>.e0001-c0002.ckpt.{guid}.tmp</c>, which <see cref="List"/>
/// ignores), flushes it to the disk (fsync), renames it atomically over the final name, then fsyncs the folder so the
/// rename itself survives a power loss (on Linux and macOS; elsewhere the rename is left to the file system). A crash
/// before the rename leaves the previous checkpoint untouched and at most a stray temporary file.
/// </remarks>
public sealed class LocalCheckpointStore : ICheckpointStore
{
    private const string TempExtension = ".tmp";

    /// <summary>A store over <paramref name="directory"/>, which is created on the first save if needed.</summary>
    public LocalCheckpointStore(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = Path.GetFullPath(directory);
    }

    /// <summary>The store's folder, as a full path.</summary>
    public string Directory { get; }

    /// <summary>Test seam: runs after the temporary file is durable and before it is renamed (a throw simulates a crash there).</summary>
    internal Action<string>? BeforeRename { get; set; }

    /// <inheritdoc />
    public string Describe(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Path.Combine(Directory, CheckpointRef.RunFolder(key.RunId), key.FileName);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The write and its fsyncs block, so they run on a thread of their own, never on a thread-pool thread: on a small
    /// machine, a pool thread blocked on the disk starves the actors (and the trainer's messages) that share the pool.
    /// </remarks>
    public Task SaveAsync(CheckpointRef key, CheckpointHeader header, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(header);
        header.RequireFor(key);
        return Task.Factory.StartNew(() => Save(key, header, payload, cancellationToken), cancellationToken,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Save(CheckpointRef key, CheckpointHeader header, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var final = Describe(key);
        var folder = Path.GetDirectoryName(final)!;
        var newRoot = !System.IO.Directory.Exists(Directory);
        var newFolder = newRoot || !System.IO.Directory.Exists(folder);
        System.IO.Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, TempName(key));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(CheckpointFile.Encode(header, payload));
                stream.Flush(flushToDisk: true);
            }
            cancellationToken.ThrowIfCancellationRequested();
            BeforeRename?.Invoke(temp);
            File.Move(temp, final, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        FsyncDirectory(folder);
        // New folders are entries of their parents: make those durable too.
        if (newFolder) FsyncDirectory(Directory);
        if (newRoot && Path.GetDirectoryName(Directory) is { } parent) FsyncDirectory(parent);
    }

    /// <inheritdoc />
    public Checkpoint Load(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var path = Describe(key);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"checkpoint '{path}' ({key}) does not exist", path, e);
        }
        return CheckpointFile.DecodeAs(key, bytes, path);
    }

    /// <inheritdoc />
    public IReadOnlyList<CheckpointRef> List(int runId)
    {
        var folder = Path.Combine(Directory, CheckpointRef.RunFolder(runId));
        if (!System.IO.Directory.Exists(folder)) return [];
        var keys = new List<CheckpointRef>();
        foreach (var file in System.IO.Directory.EnumerateFiles(folder, "*" + CheckpointRef.Extension))
        {
            if (CheckpointRef.TryParse($"{CheckpointRef.RunFolder(runId)}/{Path.GetFileName(file)}", out var key))
                keys.Add(key);
        }
        keys.Sort();
        return keys;
    }

    /// <inheritdoc />
    public void Delete(CheckpointRef key)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            File.Delete(Describe(key)); // no error when the file does not exist...
        }
        catch (DirectoryNotFoundException)
        {
            // ...nor when its run has no folder
        }
    }

    /// <summary>The name of a save's temporary file: hidden, unique per save, never a checkpoint name.</summary>
    /// <summary>
    /// Removes the temporary files that writes interrupted by a crash left in the runs' folders (never a finished
    /// checkpoint); returns how many. Call it only while no fit writes to the store (before a resume).
    /// </summary>
    public int RemoveInterruptedWrites()
    {
        if (!System.IO.Directory.Exists(Directory)) return 0;
        var removed = 0;
        foreach (var folder in System.IO.Directory.EnumerateDirectories(Directory, "run-*"))
            foreach (var temp in System.IO.Directory.EnumerateFiles(folder, "." + "*" + CheckpointRef.Extension + ".*" + TempExtension))
            {
                TryDelete(temp);
                if (!File.Exists(temp)) removed++;
            }
        return removed;
    }

    internal static string TempName(CheckpointRef key) => $".{key.FileName}.{Guid.NewGuid():N}{TempExtension}";

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a stray temporary file is ignored by List and harmless.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Flushes a folder's entries (a rename, a new file) to the disk; .NET cannot open a folder, so libc does.</summary>
    private static void FsyncDirectory(string folder)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        var fd = open(folder, 0 /* O_RDONLY */);
        if (fd < 0) return; // best effort: some file systems refuse; the file itself is already durable
        try
        {
            fsync(fd);
        }
        finally
        {
            close(fd);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
