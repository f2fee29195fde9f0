using System.Data.Common;

namespace RapidFire.Actors.Storage;

/// <summary>
/// Recognises a write that failed because its file system (or its database) is full, and says how much room there
/// is. A full disk is a fault of the machine, never of a run or of its MLSpec: the fit is interrupted with every
/// completed chunk kept, and <c>rapidfire resume</c> finishes it once space is freed.
/// </summary>
public static class OutOfSpace
{
    /// <summary>Whether <paramref name="error"/> (or an exception inside it) says the disk, a quota or the database is full.</summary>
    public static bool Is(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(Is)) return true;
            if (e is DbException db && (db.SqlState is "53100" || db is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 13 })) return true;
            if (e is IOException && (e.HResult & 0xFFFF) is DiskFull or HandleDiskFull) return true;
            if (Says(e.Message)) return true;
        }
        return false;
    }

    /// <summary>Whether a message (one from another node, say) is a full disk's.</summary>
    public static bool Says(string message) =>
        message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase) ||
        message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase) ||
        message.Contains("database or disk is full", StringComparison.OrdinalIgnoreCase) ||
        message.Contains("not enough space on the disk", StringComparison.OrdinalIgnoreCase);

    /// <summary>The space left on the file system holding <paramref name="path"/>, as a phrase; empty when it cannot be read.</summary>
    public static string FreeSpace(string path)
    {
        try
        {
            var folder = Path.GetFullPath(path);
            while (!Directory.Exists(folder) && Path.GetDirectoryName(folder) is { } parent) folder = parent;
            return $"{Megabytes(new DriveInfo(folder).AvailableFreeSpace)} free there";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return "";
        }
    }

    /// <summary>
    /// The head of a full disk's report: <c>out of disk space in FOLDER (1.0 MB free there)</c>; without a folder (not a
    /// local one), <c>out of disk space</c>.
    /// </summary>
    public static string In(string? folder)
    {
        if (folder is null) return "out of disk space";
        var free = FreeSpace(folder);
        return $"out of disk space in {folder}{(free.Length > 0 ? $" ({free})" : "")}";
    }

    /// <summary><paramref name="bytes"/> in megabytes, as the messages give them.</summary>
    public static string Megabytes(long bytes) => $"{bytes / 1048576.0:0.0} MB";

    // The Windows error codes .NET gives a full disk's IOException on every platform (ENOSPC maps to them on Unix).
    private const int DiskFull = 112;
    private const int HandleDiskFull = 39;
}
