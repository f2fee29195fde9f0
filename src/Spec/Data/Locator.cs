namespace RapidFire.Spec.Data;

/// <summary>
/// Where a file or folder of a data handle lives: a local path (<see cref="LocalLocator"/>) or an object in
/// S3 (<see cref="S3Locator"/>). Locators are written in data handles as text: <c>s3://bucket/key</c> for S3,
/// anything else is a local path, relative to the data handle's folder unless absolute.
/// </summary>
public abstract record Locator
{
    private protected Locator() { }

    /// <summary>The S3 scheme prefix, <c>s3://</c>.</summary>
    public const string S3Prefix = "s3://";

    /// <summary>
    /// Parses a locator as written in a data handle. <c>s3://bucket/key</c> gives an <see cref="S3Locator"/>
    /// (the key may be empty for a whole bucket); any other text is a local path, resolved against
    /// <paramref name="baseDirectory"/> when relative and normalized to a full path.
    /// </summary>
    /// <exception cref="ArgumentException">The text is empty, or an S3 locator has no bucket.</exception>
    public static Locator Parse(string text, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(baseDirectory);
        if (string.IsNullOrWhiteSpace(text))
            throw new ArgumentException("a locator must not be empty");
        if (text.StartsWith(S3Prefix, StringComparison.OrdinalIgnoreCase))
        {
            var rest = text[S3Prefix.Length..];
            var slash = rest.IndexOf('/');
            var bucket = slash < 0 ? rest : rest[..slash];
            var key = slash < 0 ? "" : rest[(slash + 1)..];
            if (bucket.Length == 0)
                throw new ArgumentException($"locator '{text}' has no bucket: write s3://bucket/key");
            return new S3Locator(bucket, key);
        }
        return new LocalLocator(Path.GetFullPath(text, Path.GetFullPath(baseDirectory)));
    }

    /// <summary>The file name (last path segment) this locator points at, used to choose an ESF's format.</summary>
    public abstract string FileName { get; }

    /// <summary>
    /// The locator of <paramref name="relativePath"/> below this one (a folder). The path must already be
    /// checked not to escape (see <see cref="ObjectPath"/>); <c>/</c> separates its segments.
    /// </summary>
    public abstract Locator Combine(string relativePath);

    /// <summary>
    /// This locator as text relative to <paramref name="baseDirectory"/> where it lies below it (the form data handle
    /// JSON files use); otherwise its full text.
    /// </summary>
    public virtual string ToText(string baseDirectory) => ToString();
}

/// <summary>A file or folder on the local file system, by full path.</summary>
/// <param name="FullPath">The absolute, normalized path.</param>
public sealed record LocalLocator(string FullPath) : Locator
{
    /// <inheritdoc />
    public override string FileName => Path.GetFileName(FullPath.TrimEnd(Path.DirectorySeparatorChar));

    /// <inheritdoc />
    public override Locator Combine(string relativePath) =>
        new LocalLocator(Path.GetFullPath(Path.Combine(FullPath, relativePath.Replace('/', Path.DirectorySeparatorChar))));

    /// <inheritdoc />
    public override string ToText(string baseDirectory)
    {
        var relative = Path.GetRelativePath(Path.GetFullPath(baseDirectory), FullPath);
        var outside = relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal)
                      || Path.IsPathRooted(relative);
        return outside ? FullPath : relative.Replace(Path.DirectorySeparatorChar, '/');
    }

    /// <summary>The full path.</summary>
    public override string ToString() => FullPath;
}

/// <summary>An object (or, with a key ending in <c>/</c> or an empty key, a prefix) in an S3 bucket.</summary>
/// <param name="Bucket">The bucket name.</param>
/// <param name="Key">The object key or prefix, without a leading <c>/</c>.</param>
public sealed record S3Locator(string Bucket, string Key) : Locator
{
    /// <inheritdoc />
    public override string FileName => Key.TrimEnd('/') is var k && k.LastIndexOf('/') is var i and >= 0 ? k[(i + 1)..] : Key.TrimEnd('/');

    /// <inheritdoc />
    public override Locator Combine(string relativePath) =>
        new S3Locator(Bucket, Key.Length == 0 ? relativePath : Key.TrimEnd('/') + "/" + relativePath);

    /// <summary>The locator as <c>s3://bucket/key</c>.</summary>
    public override string ToString() => $"{S3Prefix}{Bucket}/{Key}";
}
