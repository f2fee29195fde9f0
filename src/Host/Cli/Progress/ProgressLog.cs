using System.Globalization;
using RapidFire.Spec.Progress;

namespace RapidFire.Host.Cli.Progress;

/// <summary>
/// Progress as plain lines, for output that is not a terminal (redirected, CI): <c>run 2: epoch 1/3 chunk 2/4 trained
/// (16%)</c>. No escape codes, and few lines: a task's line is written when it has made progress since its last line
/// and either it is the task's first line, the work is complete, or <see cref="Interval"/> has passed; and once when
/// the task finishes short of complete (training after a cancel: <c>training: 4/8 chunks, 4/4 runs ended, 4 stopped
/// (50%)</c>), so the last line says where the work ended.
/// </summary>
public sealed class ProgressLog : IProgress<ProgressUpdate>
{
    /// <summary>The least time between two lines of one task when neither is its first nor says it is complete.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(5);

    private readonly TextWriter output;
    private readonly Func<DateTime> clock;
    private readonly object gate = new();
    private readonly Dictionary<string, (long Done, DateTime At, bool Closed)> written = [];

    /// <summary>Lines to <paramref name="output"/>, at most one per task every <paramref name="interval"/> (default 5 s).</summary>
    /// <param name="output">Where the lines go.</param>
    /// <param name="interval">The least time between two lines of one task.</param>
    /// <param name="clock">The time (UTC); tests give their own.</param>
    public ProgressLog(TextWriter output, TimeSpan? interval = null, Func<DateTime>? clock = null)
    {
        this.output = output;
        Interval = interval ?? DefaultInterval;
        this.clock = clock ?? (() => DateTime.UtcNow);
    }

    /// <summary>The least time between two lines of one task.</summary>
    public TimeSpan Interval { get; }

    /// <inheritdoc />
    public void Report(ProgressUpdate value)
    {
        lock (gate)
        {
            if (value.Done <= 0) return;
            var now = clock();
            var complete = value.Total is { } total && value.Done >= total;
            if (written.TryGetValue(value.Task, out var last))
            {
                var closes = value.Finished && !last.Closed; // its last line was not one of a complete or finished task
                if (value.Done <= last.Done && !closes) return;
                if (!complete && !closes && now - last.At < Interval) return;
            }
            written[value.Task] = (value.Done, now, complete || value.Finished);
            output.WriteLine(Line(value));
        }
    }

    /// <summary>An update's line: <c>task: detail (45%)</c>, or <c>task: detail</c> when its total is unknown.</summary>
    public static string Line(ProgressUpdate update)
    {
        var what = update.Detail ?? (update.Total is { } total
            ? string.Create(CultureInfo.InvariantCulture, $"{update.Done}/{total}")
            : update.Done.ToString(CultureInfo.InvariantCulture));
        return update.Total is null ? $"{update.Task}: {what}" : $"{update.Task}: {what} ({ProgressBar.Percent(update.Fraction)})";
    }
}
