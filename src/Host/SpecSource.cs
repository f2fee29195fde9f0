using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Actors.Experiment;

namespace RapidFire.Host;

/// <summary>Where an experiment's MLSpec comes from: a <c>.cs</c> file compiled at run time, or a compiled class.</summary>
public abstract record SpecSource
{
    /// <summary>The spec class in a <c>.cs</c> file (compiled with Roslyn; see <see cref="SpecCompiler"/>).</summary>
    public static SpecSource FromFile(string path) => new FileSpec(System.IO.Path.GetFullPath(path));

    /// <summary>A compiled spec class with a public parameterless constructor.</summary>
    public static SpecSource Of<TSpec>() where TSpec : MLSpec, new() => new TypeSpec(typeof(TSpec));

    /// <summary>What the journal records: a spec file is copied into the experiment's <c>spec/</c> folder, so a resume compiles what the fit started with.</summary>
    internal abstract SpecReference Reference(string experimentPath);

    private sealed record FileSpec(string Path) : SpecSource
    {
        internal override SpecReference Reference(string experimentPath)
        {
            SpecCompiler.CompileFile(Path); // a broken spec is refused before anything is journaled
            var folder = System.IO.Path.Combine(experimentPath, "spec");
            Directory.CreateDirectory(folder);
            var text = File.ReadAllText(Path);
            var copy = System.IO.Path.Combine(folder, System.IO.Path.GetFileName(Path));
            for (var i = 2; File.Exists(copy) && File.ReadAllText(copy) != text; i++)
                copy = System.IO.Path.Combine(folder, $"{System.IO.Path.GetFileNameWithoutExtension(Path)}.{i}.cs");
            if (!File.Exists(copy)) File.WriteAllText(copy, text);
            return SpecReference.FromFile(copy);
        }
    }

    private sealed record TypeSpec(Type Type) : SpecSource
    {
        internal override SpecReference Reference(string experimentPath) => SpecReference.FromType(Type);
    }
}
