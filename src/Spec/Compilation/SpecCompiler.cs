using System.Collections.Concurrent;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Emit;
using Microsoft.CodeAnalysis.Text;

namespace RapidFire.Spec.Compilation;

/// <summary>A spec compiled from source: its single <see cref="MLSpec"/> class.</summary>
/// <param name="SpecType">The non-abstract class deriving from <see cref="MLSpec"/>.</param>
/// <param name="SourceHash">SHA-256 of the source text, hex: identifies the spec across nodes.</param>
/// <param name="SourcePath">The file it was compiled from.</param>
public sealed record CompiledSpec(Type SpecType, string SourceHash, string SourcePath)
{
    /// <summary>A new instance of the spec class.</summary>
    public MLSpec CreateInstance()
    {
        try
        {
            return (MLSpec)Activator.CreateInstance(SpecType)!;
        }
        catch (TargetInvocationException e)
        {
            throw new SpecException($"{SpecType.Name} constructor", e.InnerException?.Message ?? e.Message, e.InnerException);
        }
    }
}

/// <summary>A spec file did not compile, or does not hold exactly one <see cref="MLSpec"/> class.</summary>
public sealed class SpecCompilationException(IReadOnlyList<string> problems) : RapidFireException(problems);

/// <summary>
/// Compiles one user <c>.cs</c> file with Roslyn against the assemblies the host runs with (the framework,
/// RapidFire.Spec, TorchSharp, Microsoft.Data.Analysis...), and finds its single <see cref="MLSpec"/> subclass.
/// The file gets the usual implicit usings of an SDK project (System, System.Collections.Generic, System.IO,
/// System.Linq, System.Threading, System.Threading.Tasks). Results are cached by source hash: in the process (a spec is
/// compiled once, whatever path it is read from) and on disk under <c>~/.cache/rapidfire/specs</c> (or
/// <c>$XDG_CACHE_HOME/rapidfire/specs</c>), keyed by the source hash and the exact assemblies it is compiled against,
/// so that a second process with the same spec loads the compiled assembly instead of compiling.
/// </summary>
public static class SpecCompiler
{
    private static readonly string[] ImplicitUsings =
        ["System", "System.Collections.Generic", "System.IO", "System.Linq", "System.Threading", "System.Threading.Tasks"];

    private static readonly Lazy<IReadOnlyList<string>> ReferencePaths = new(FindReferencePaths);
    private static readonly ConcurrentDictionary<string, Lazy<CompiledSpec>> Cache = new();

    /// <summary>
    /// What only a compilation needs, apart so that Roslyn's assemblies load only when a spec is compiled: a spec found
    /// in the disk cache costs no compiler.
    /// </summary>
    private static class Roslyn
    {
        public static readonly Lazy<IReadOnlyList<MetadataReference>> References = new(LoadReferences);
    }

    /// <summary>Compiles the spec file at <paramref name="path"/>.</summary>
    public static CompiledSpec CompileFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new SpecCompilationException([$"{path}: spec file not found"]);
        return Compile(File.ReadAllText(full), full);
    }

    /// <summary>
    /// Compiles <paramref name="source"/> (named <paramref name="path"/> in messages and stack traces).
    /// Compile errors become a <see cref="SpecCompilationException"/> listing each as
    /// <c>File.cs(line,column): error CSxxxx: message</c>.
    /// </summary>
    public static CompiledSpec Compile(string source, string path)
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(source))).ToLowerInvariant();
        var lazy = Cache.GetOrAdd(hash, _ => new Lazy<CompiledSpec>(() => LoadOrCompile(source, path, hash)));
        try
        {
            var compiled = lazy.Value;
            return compiled.SourcePath == path ? compiled : compiled with { SourcePath = path };
        }
        catch
        {
            Cache.TryRemove(hash, out _);
            throw;
        }
    }

    /// <summary>The folder of compiled specs: <c>rapidfire/specs</c> in the user's cache folder.</summary>
    public static string DiskCacheDirectory => Path.Combine(CacheFolders.Root, "specs");

    /// <summary>
    /// The assembly compiled before from the same source against the same references, else a fresh compilation (then
    /// saved for the next process). An unreadable cache entry is compiled again.
    /// </summary>
    private static CompiledSpec LoadOrCompile(string source, string path, string hash)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{hash}\n{ReferenceStamp()}"))).ToLowerInvariant()[..32];
        var dll = Path.Combine(DiskCacheDirectory, key + ".dll");
        var pdb = Path.Combine(DiskCacheDirectory, key + ".pdb");
        if (File.Exists(dll) && File.Exists(pdb))
        {
            try
            {
                return Inspect(Assembly.Load(File.ReadAllBytes(dll), File.ReadAllBytes(pdb)), path, hash);
            }
            catch (Exception e) when (e is IOException or BadImageFormatException or UnauthorizedAccessException)
            {
                // compiled again below, and the entry replaced
            }
        }
        var (image, symbols) = Emit(source, path, hash);
        try
        {
            Directory.CreateDirectory(DiskCacheDirectory);
            Save(pdb, symbols);
            Save(dll, image); // last: an entry counts once its assembly is there
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a read-only or full cache folder only costs the next process a compilation
        }
        return Inspect(Assembly.Load(image, symbols), path, hash);
    }

    private static void Save(string file, byte[] bytes)
    {
        var temp = $"{file}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, file, overwrite: true);
    }

    /// <summary>
    /// What the compiled assembly depends on: every reference's name, size and time (the compiler's own assemblies among
    /// them), so that an updated RapidFire, TorchSharp, Roslyn or .NET compiles the spec again.
    /// </summary>
    private static string ReferenceStamp()
    {
        var stamp = new StringBuilder("references v2");
        foreach (var p in ReferencePaths.Value)
        {
            var info = new FileInfo(p);
            stamp.Append('|').Append(info.Name).Append(':').Append(info.Length).Append(':').Append(info.LastWriteTimeUtc.Ticks);
        }
        return stamp.ToString();
    }

    /// <summary>Compiles the source to an assembly and its symbols; compile errors are a <see cref="SpecCompilationException"/>.</summary>
    private static (byte[] Image, byte[] Symbols) Emit(string source, string path, string hash)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var text = SourceText.From(source, Encoding.UTF8);
        var trees = new[]
        {
            CSharpSyntaxTree.ParseText(text, parse, path),
            CSharpSyntaxTree.ParseText(SourceText.From(string.Concat(ImplicitUsings.Select(u => $"global using global::{u};\n")), Encoding.UTF8), parse, path + ".usings.g.cs"),
        };
        var name = $"RapidFire.UserSpec.{Path.GetFileNameWithoutExtension(path)}.{hash[..12]}";
        var compilation = CSharpCompilation.Create(name, trees, Roslyn.References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary,
                optimizationLevel: OptimizationLevel.Release,
                nullableContextOptions: NullableContextOptions.Enable));

        using var dll = new MemoryStream();
        using var pdb = new MemoryStream();
        var result = compilation.Emit(dll, pdb, embeddedTexts: [EmbeddedText.FromSource(path, text)],
            options: new EmitOptions(debugInformationFormat: DebugInformationFormat.PortablePdb));
        if (!result.Success)
        {
            var errors = result.Diagnostics
                .Where(d => d.Severity == DiagnosticSeverity.Error)
                .OrderBy(d => d.Location.GetLineSpan().StartLinePosition)
                .Select(Format)
                .ToList();
            throw new SpecCompilationException(errors);
        }
        return (dll.ToArray(), pdb.ToArray());
    }

    /// <summary>The spec class of a compiled assembly; anything but exactly one, with a parameterless constructor, is an error.</summary>
    private static CompiledSpec Inspect(Assembly assembly, string path, string hash)
    {
        var specs = assembly.GetTypes().Where(t => typeof(MLSpec).IsAssignableFrom(t) && !t.IsAbstract).ToList();
        var file = Path.GetFileName(path);
        if (specs.Count == 0)
            throw new SpecCompilationException([$"{file}: no class derives from RapidFire.Spec.MLSpec"]);
        if (specs.Count > 1)
            throw new SpecCompilationException(
                [$"{file}: {specs.Count} classes derive from RapidFire.Spec.MLSpec ({string.Join(", ", specs.Select(s => s.Name))}); keep exactly one per file"]);
        if (specs[0].GetConstructor(Type.EmptyTypes) is null)
            throw new SpecCompilationException([$"{file}: {specs[0].Name} needs a public parameterless constructor"]);
        return new CompiledSpec(specs[0], hash, path);
    }

    private static string Format(Diagnostic d)
    {
        var span = d.Location.GetLineSpan();
        var where = d.Location.IsInSource
            ? $"{Path.GetFileName(span.Path)}({span.StartLinePosition.Line + 1},{span.StartLinePosition.Character + 1}): "
            : "";
        return $"{where}error {d.Id}: {d.GetMessage()}";
    }

    /// <summary>Every managed assembly the host was started with (the trusted platform assemblies), and those loaded since.</summary>
    private static IReadOnlyList<string> FindReferencePaths()
    {
        var tpa = (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return tpa.Concat(AppDomain.CurrentDomain.GetAssemblies()
                .Where(a => !a.IsDynamic && !string.IsNullOrEmpty(a.Location))
                .Select(a => a.Location))
            .Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) && File.Exists(p))
            .DistinctBy(Path.GetFileName, StringComparer.OrdinalIgnoreCase)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>The references of <see cref="FindReferencePaths"/> that hold metadata.</summary>
    private static IReadOnlyList<MetadataReference> LoadReferences()
    {
        var references = new List<MetadataReference>();
        foreach (var p in ReferencePaths.Value)
        {
            try
            {
                using var stream = File.OpenRead(p);
                using var pe = new System.Reflection.PortableExecutable.PEReader(stream);
                if (!pe.HasMetadata) continue;
            }
            catch (BadImageFormatException) { continue; }
            references.Add(MetadataReference.CreateFromFile(p));
        }
        return references;
    }
}
