namespace RapidFire.Spec.Data.Formats;

/// <summary>Checks on an ESF's column names, shared by all formats.</summary>
internal static class EsfColumns
{
    /// <summary>The name of the id column: lower case.</summary>
    public const string Id = "id";

    /// <summary>Adds an error for each empty or repeated column name; <see langword="true"/> when there are none.</summary>
    public static bool CheckNames(IReadOnlyList<string> names, ErrorList errors)
    {
        var ok = true;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < names.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(names[i]))
            {
                errors.Add(null, $"column {i + 1} of the header has no name");
                ok = false;
            }
            else if (!seen.Add(names[i]))
            {
                errors.Add(null, $"the header names column '{names[i]}' twice");
                ok = false;
            }
        }
        return ok;
    }
}
