using System.Security.Cryptography;
using System.Text;
using RapidFire.Actors.Experiment;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;

namespace RapidFire.Actors.Cluster;

/// <summary>
/// A fit's MLSpec as it travels to the workers: the source of its <c>.cs</c> file with the SHA-256 of that text (the
/// worker compiles it with Roslyn and checks the hash; nothing is deployed to it), or the name of a compiled class
/// the worker's process must already have. Small: a spec file is text.
/// </summary>
/// <param name="Name">The file name, for messages and stack traces.</param>
/// <param name="Source">The file's text, for a spec compiled at run time.</param>
/// <param name="Sha256">The SHA-256 of <paramref name="Source"/>'s UTF-8 bytes, lowercase hex.</param>
/// <param name="TypeName">The assembly-qualified name of a compiled spec class.</param>
public sealed record SpecPackage(string Name, string? Source, string? Sha256, string? TypeName)
{
    /// <summary>The package of a fit's spec: a file's current text (checked against the hash the fit started with), or a class name.</summary>
    public static SpecPackage From(SpecReference spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.File is null) return new SpecPackage(spec.Name, null, null, spec.TypeName);
        spec.Factory(); // refuses a file that changed since the fit started
        var source = File.ReadAllText(spec.File);
        return new SpecPackage(Path.GetFileName(spec.File), source, Hash(source), null);
    }

    /// <summary>
    /// A factory of spec instances on this node: the source compiled (once per hash, cached by
    /// <see cref="SpecCompiler"/>) after its hash is checked, or the named class. A mismatch or a compile error is a
    /// <see cref="SpecCompilationException"/>.
    /// </summary>
    public Func<MLSpec> Factory()
    {
        if (Source is null) return new SpecReference(null, null, TypeName).Factory();
        var hash = Hash(Source);
        if (hash != Sha256)
            throw new SpecCompilationException([$"{Name}: the spec arrived with SHA-256 {hash}, not {Sha256}: it was changed or cut in transit"]);
        return SpecCompiler.Compile(Source, Name).CreateInstance;
    }

    private static string Hash(string source) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(source))).ToLowerInvariant();
}
