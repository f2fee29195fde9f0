namespace RapidFire.Spec.Data;

/// <summary>
/// The rules for a value of an object column: a path relative to the data handle's <c>objects</c> locator that
/// stays below it. Both <c>/</c> and <c>\</c> separate segments (ESFs written on Windows work unchanged);
/// <c>.</c> segments are dropped and <c>..</c> segments are resolved, so <c>images/../images/a.png</c> is fine
/// but <c>../secret.png</c> is refused. Absolute paths (<c>/x</c>, <c>C:\x</c>) and URLs are refused too:
/// an ESF must be movable together with its objects.
/// </summary>
public static class ObjectPath
{
    /// <summary>
    /// Normalizes <paramref name="value"/> to <c>/</c>-separated segments with no <c>.</c> or <c>..</c>, or says
    /// why it is not an acceptable object path.
    /// </summary>
    /// <returns><see langword="true"/> with <paramref name="normalized"/> set; otherwise <see langword="false"/> with
    /// <paramref name="problem"/> set to a sentence fragment such as "escapes the objects folder".</returns>
    public static bool TryNormalize(string value, out string normalized, out string problem)
    {
        normalized = "";
        problem = "";
        if (value.Length == 0 || string.IsNullOrWhiteSpace(value))
        {
            problem = "is empty, not a path";
            return false;
        }
        if (value[0] is '/' or '\\' || (value.Length >= 2 && char.IsAsciiLetter(value[0]) && value[1] == ':'))
        {
            problem = "is an absolute path; object paths must be relative to the objects locator";
            return false;
        }
        if (value.Contains("://", StringComparison.Ordinal))
        {
            problem = "is a URL; object paths must be relative to the objects locator";
            return false;
        }
        var segments = new List<string>();
        foreach (var segment in value.Split('/', '\\'))
        {
            if (segment is "" or ".")
                continue;
            if (segment == "..")
            {
                if (segments.Count == 0)
                {
                    problem = "escapes the objects locator ('..' leads outside it)";
                    return false;
                }
                segments.RemoveAt(segments.Count - 1);
                continue;
            }
            segments.Add(segment);
        }
        if (segments.Count == 0)
        {
            problem = "names the objects locator itself, not a file below it";
            return false;
        }
        normalized = string.Join('/', segments);
        return true;
    }
}
