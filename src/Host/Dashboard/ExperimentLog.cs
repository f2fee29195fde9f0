using System.Globalization;
using System.Text;

namespace RapidFire.Host.Dashboard;

/// <summary>
/// Reads <c>experiment.log</c> (one line per event worth keeping, each led by its UTC time stamp) while another part of
/// the process appends to it: its last lines, the lines appended since a position, and the fit operations it records.
/// </summary>
internal static class ExperimentLog
{
    /// <summary>The log's file name in the experiment folder.</summary>
    public const string FileName = "experiment.log";

    /// <summary>The most lines one tail returns.</summary>
    public const int MaxTail = 10_000;

    private const int Block = 64 * 1024;

    /// <summary>The most bytes read backwards for one tail: a log of absurdly long lines is cut rather than read whole.</summary>
    private const int MaxTailBytes = 8 * 1024 * 1024;

    /// <summary>The log file of the experiment in <paramref name="experimentPath"/>.</summary>
    public static string PathIn(string experimentPath) => Path.Combine(experimentPath, FileName);

    /// <summary>The last <paramref name="count"/> complete lines of <paramref name="path"/>, oldest first; none when it does not exist.</summary>
    public static IReadOnlyList<string> Tail(string path, int count)
    {
        if (count <= 0) return [];
        using var file = Open(path);
        if (file is null) return [];
        // Read blocks backwards until the buffer holds more line ends than lines wanted (or the whole file).
        var length = file.Length;
        var start = length;
        var buffer = new List<byte[]>();
        var newlines = 0;
        while (start > 0 && newlines <= count && length - start < MaxTailBytes)
        {
            var size = (int)Math.Min(Block, start);
            start -= size;
            var block = new byte[size];
            file.Position = start;
            file.ReadExactly(block);
            buffer.Insert(0, block);
            newlines += block.Count(b => b == (byte)'\n');
        }
        var text = Encoding.UTF8.GetString(buffer.SelectMany(b => b).ToArray());
        var lines = text.Split('\n');
        // The first piece is a partial line when reading stopped before the file's start; the last is after the final line end.
        var complete = lines.Skip(start > 0 ? 1 : 0).Take(lines.Length - (start > 0 ? 1 : 0) - 1).Select(l => l.TrimEnd('\r'));
        return complete.TakeLast(count).ToList();
    }

    /// <summary>
    /// What the log says of the experiment's operations: the last <c>fit of N runs started</c> or <c>fit N resumed</c>
    /// line, and whether a <c>fit ended</c> or <c>fit could not start</c> line followed it.
    /// </summary>
    public static (string? Operation, DateTime? StartedUtc, DateTime? EndedUtc, string? Summary) LastOperation(string path)
    {
        string? operation = null, summary = null;
        DateTime? started = null, ended = null;
        foreach (var line in Tail(path, 2_000))
        {
            if (!TrySplit(line, out var time, out var message)) continue;
            if (message.StartsWith("fit of ", StringComparison.Ordinal) && message.Contains(" started", StringComparison.Ordinal))
                (operation, started, ended, summary) = ("fit", time, null, message);
            else if (message.StartsWith("fit ", StringComparison.Ordinal) && message.EndsWith(" resumed", StringComparison.Ordinal))
                (operation, started, ended, summary) = ("resume", time, null, message);
            else if (message.StartsWith("fit ended", StringComparison.Ordinal) || message.StartsWith("fit could not start", StringComparison.Ordinal))
                (ended, summary) = (time, message);
        }
        return (operation, started, ended, summary);
    }

    /// <summary>Splits a log line into its time stamp and message.</summary>
    public static bool TrySplit(string line, out DateTime time, out string message)
    {
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        message = space < 0 ? line : line[(space + 1)..];
        return DateTime.TryParseExact(space < 0 ? "" : line[..space], "yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture,
            DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out time);
    }

    /// <summary>Opens the log for reading while the experiment appends to it; null when it does not exist (yet).</summary>
    public static FileStream? Open(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Follows the log from where it ends now: <see cref="ReadNew"/> returns the complete lines appended since. A line
    /// still being written stays until its line end arrives; a log that shrank (replaced) is followed from its start.
    /// </summary>
    public sealed class Follower(string path)
    {
        /// <summary>The most bytes one <see cref="ReadNew"/> reads: a burst is delivered over several calls.</summary>
        private const int MaxRead = 1024 * 1024;

        private long position = File.Exists(path) ? new FileInfo(path).Length : 0;
        private readonly List<byte> partial = [];

        /// <summary>The lines completed since the last call (or since the follower was made).</summary>
        public IReadOnlyList<string> ReadNew()
        {
            using var file = Open(path);
            if (file is null) return [];
            if (file.Length < position)
            {
                position = 0;
                partial.Clear();
            }
            if (file.Length == position) return [];
            var bytes = new byte[(int)Math.Min(MaxRead, file.Length - position)];
            file.Position = position;
            var read = file.Read(bytes);
            position += read;
            var lines = new List<string>();
            for (var i = 0; i < read; i++)
            {
                if (bytes[i] != (byte)'\n')
                {
                    partial.Add(bytes[i]);
                    continue;
                }
                lines.Add(Encoding.UTF8.GetString(partial.ToArray()).TrimEnd('\r'));
                partial.Clear();
            }
            return lines;
        }
    }
}
