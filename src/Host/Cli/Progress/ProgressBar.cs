using System.Globalization;

namespace RapidFire.Host.Cli.Progress;

/// <summary>A progress bar as text, for table cells and plain lines: <c>[███░░░░░]  45%</c>.</summary>
public static class ProgressBar
{
    /// <summary>The filled part of a bar.</summary>
    public const char Filled = '█';

    /// <summary>The part still to do.</summary>
    public const char Empty = '░';

    /// <summary>
    /// A bar of <paramref name="width"/> cells for <paramref name="fraction"/> (clamped to [0, 1]), then the percentage:
    /// <c>[███░░░░░]  45%</c>. Cells and percent round down, so a bar is full and says 100% only when the work is done.
    /// An unknown fraction (null) is an empty bar and <c>-</c>. The text has the same length for any fraction.
    /// </summary>
    public static string Text(double? fraction, int width = 20)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (fraction is not { } f || double.IsNaN(f)) return $"[{new string(Empty, width)}]    -";
        f = Math.Clamp(f, 0, 1);
        // 0.29 * 100 is 28.999...: the epsilon keeps exact fractions on their cell and percent.
        var filled = (int)Math.Floor(f * width + 1e-9);
        var percent = (int)Math.Floor(f * 100 + 1e-9);
        return $"[{new string(Filled, filled)}{new string(Empty, width - filled)}] " +
               percent.ToString(CultureInfo.InvariantCulture).PadLeft(3) + "%";
    }

    /// <summary>The percentage alone, for plain lines: <c>45%</c> (rounded down), or <c>-</c> when unknown.</summary>
    public static string Percent(double? fraction) => fraction is { } f && !double.IsNaN(f)
        ? ((int)Math.Floor(Math.Clamp(f, 0, 1) * 100 + 1e-9)).ToString(CultureInfo.InvariantCulture) + "%"
        : "-";
}
