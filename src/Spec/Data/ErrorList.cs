namespace RapidFire.Spec.Data;

/// <summary>
/// The errors found in one file, capped: the first <see cref="Cap"/> are kept and the rest counted, so that a file
/// with a million bad rows gives a readable report ("... and 999980 more errors in this file").
/// </summary>
internal sealed class ErrorList(string file, int cap = ErrorList.DefaultCap)
{
    public const int DefaultCap = 20;

    private readonly List<DataError> errors = [];
    private int dropped;

    public string File { get; } = file;

    public int Cap { get; } = cap;

    public int Count => errors.Count + dropped;

    public bool Any => Count > 0;

    public void Add(long? row, string message)
    {
        if (errors.Count < Cap)
            errors.Add(new DataError(File, row, message));
        else
            dropped++;
    }

    public void Add(DataError error)
    {
        if (errors.Count < Cap)
            errors.Add(error);
        else
            dropped++;
    }

    /// <summary>The kept errors, followed by a line counting the ones left out.</summary>
    public IReadOnlyList<DataError> ToList() => dropped == 0
        ? errors.ToList()
        : [.. errors, new DataError(File, null, $"and {dropped} more error{(dropped == 1 ? "" : "s")} in this file")];
}
