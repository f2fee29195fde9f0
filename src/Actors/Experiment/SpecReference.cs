using System.Security.Cryptography;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// Where a fit's MLSpec comes from, as a journal can hold it: a <c>.cs</c> file (the experiment's own copy, with the
/// SHA-256 of its text) or a compiled class (by assembly-qualified name).
/// </summary>
/// <param name="File">The spec file, for a spec compiled at run time.</param>
/// <param name="Sha256">The hash of the file's text when the fit started.</param>
/// <param name="TypeName">The assembly-qualified name of a compiled spec class.</param>
public sealed record SpecReference(string? File, string? Sha256, string? TypeName)
{
    /// <summary>A spec file; its current text is hashed.</summary>
    public static SpecReference FromFile(string path)
    {
        var full = Path.GetFullPath(path);
        return new SpecReference(full, Hash(full), null);
    }

    /// <summary>A compiled spec class.</summary>
    public static SpecReference FromType(Type type) => new(null, null, type.AssemblyQualifiedName);

    /// <summary>
    /// A factory of spec instances. A file whose text changed since the fit started is refused (a changed spec
    /// needs a new experiment), as is a class that cannot be found.
    /// </summary>
    public Func<MLSpec> Factory()
    {
        if (File is not null)
        {
            if (Sha256 is not null && Hash(File) != Sha256)
                throw new SpecCompilationException([$"{File}: the spec changed since the fit started; changes to an MLSpec need a new experiment"]);
            return SpecCompiler.CompileFile(File).CreateInstance;
        }
        var type = System.Type.GetType(TypeName ?? "")
            ?? throw new SpecCompilationException([$"spec class '{TypeName}' cannot be found in this process"]);
        return () => (MLSpec)Activator.CreateInstance(type)!;
    }

    /// <summary>The spec's name for messages: its file name or class name.</summary>
    public string Name => File is not null ? Path.GetFileName(File) : TypeName?.Split(',')[0] ?? "?";

    private static string Hash(string path) =>
        System.IO.File.Exists(path) ? Convert.ToHexString(SHA256.HashData(System.IO.File.ReadAllBytes(path))).ToLowerInvariant() : "missing";
}
