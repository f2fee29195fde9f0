using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace RapidFire.Spec.Native;

/// <summary>
/// Makes TorchSharp's native library loadable on systems whose libstdc++ predates GCC 13.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> asks for the symbol version <c>GLIBCXX_3.4.32</c>, which
/// Debian 12's libstdc++ (up to 3.4.30) lacks, so the first <c>torch</c> call throws. Only one symbol
/// carries that version and nothing relocates against it, so marking the requirement weak is safe. When the
/// system libstdc++ lacks the version, a copy of the library with the <c>VER_FLG_WEAK</c> bit set on that
/// requirement is written to a cache folder and loaded by absolute path, after libtorch itself; TorchSharp
/// then binds to the already-loaded copy. On newer systems nothing is touched. <see cref="LibTorchDirVariable"/> names
/// another libtorch to load first, such as a machine's own CUDA build.
/// </remarks>
public static class TorchNative
{
    /// <summary>
    /// The environment variable naming a libtorch folder to load instead of the backend package's: the <c>lib</c> folder
    /// of a libtorch or PyTorch install (such as <c>/opt/torch/.venv/lib/python3.12/site-packages/torch/lib</c>), for a
    /// machine whose own CUDA libtorch should be used. It must hold <c>libc10.so</c>, <c>libtorch_cpu.so</c> and
    /// <c>libtorch.so</c>; <c>libc10_cuda.so</c> and <c>libtorch_cuda.so</c> are loaded too when present.
    /// </summary>
    public const string LibTorchDirVariable = "RAPIDFIRE_LIBTORCH_DIR";

    /// <summary>The setting that names the same folder (HOCON, <c>--settings</c>); <see cref="LibTorchDirVariable"/> wins over it.</summary>
    public const string LibTorchDirSetting = "rapidfire.libtorch-dir";

    private static (string Directory, string Source)? configured;

    private const string TorchSharpLibrary = "libLibTorchSharp.so";
    private const string MissingVersion = "GLIBCXX_3.4.32";
    private const string VersionedSymbol = "_ZSt21ios_base_library_initv";
    // in dependency order; the CUDA ones only where the folder has them
    private static readonly string[] LibTorchLibraries = ["libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch.so"];
    private static readonly string[] RequiredLibraries = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    private static readonly Lazy<string> Outcome = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Prepares the native libraries, once per process. Call it before anything touches <c>torch</c>; every
    /// entry point of RapidFire does. Returns a one-line description of what was done. A
    /// <see cref="LibTorchDirVariable"/> folder that is not one is a <see cref="DllNotFoundException"/> naming it.
    /// </summary>
    public static string EnsureLoaded() => Outcome.Value;

    /// <summary>
    /// Names the libtorch folder of the <see cref="LibTorchDirSetting"/> setting, before the libraries load (the CLI and
    /// <c>Experiment</c> pass their settings' value); <see cref="LibTorchDirVariable"/> wins over it. Null or empty: none.
    /// Once loaded, naming another folder is an <see cref="InvalidOperationException"/>: a process has one libtorch.
    /// </summary>
    public static void UseLibTorch(string? directory)
    {
        if (string.IsNullOrWhiteSpace(directory)) return;
        lock (Outcome)
        {
            if (Outcome.IsValueCreated)
            {
                if (configured?.Directory == directory || Environment.GetEnvironmentVariable(LibTorchDirVariable) is { Length: > 0 }) return;
                throw new InvalidOperationException($"{LibTorchDirSetting}={directory}: this process has loaded its libtorch already ({Outcome.Value})");
            }
            configured = (directory, LibTorchDirSetting);
        }
    }

    /// <summary>
    /// The libtorch and TorchSharp files this process has mapped (from <c>/proc/self/maps</c>, Linux only): where the
    /// native code that runs came from.
    /// </summary>
    public static IReadOnlyList<string> LoadedLibraries()
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return [];
        return File.ReadLines(maps)
            .Select(line => line.IndexOf('/') is var at and >= 0 ? line[at..] : "")
            .Where(path => Path.GetFileName(path) is var name && (name.StartsWith("libtorch", StringComparison.Ordinal) ||
                name.StartsWith("libc10", StringComparison.Ordinal) || name.StartsWith("libLibTorchSharp", StringComparison.Ordinal)))
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private static string Load()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return "native fix not needed on this platform";
        var libtorch = LibTorchOverride();
        var patch = !SystemLibStdCxxHas(MissingVersion);
        if (libtorch is null && !patch)
            return $"system libstdc++ has {MissingVersion}; TorchSharp loads unpatched";

        var nativeDir = FindNativeDirectory()
            ?? throw new DllNotFoundException(
                $"Cannot find {TorchSharpLibrary} next to the application (looked in {AppContext.BaseDirectory} " +
                "and its runtimes/linux-x64/native folder). Is a TorchSharp backend package (TorchSharp-cpu, TorchSharp-cuda-linux) referenced?");
        // libtorch first, by absolute path: TorchSharp's layer, loaded next, binds to what is loaded under its names
        var from = libtorch?.Directory ?? nativeDir;
        foreach (var lib in LibTorchLibraries)
        {
            var path = Path.Combine(from, lib);
            if (!File.Exists(path)) continue;
            try
            {
                NativeLibrary.Load(path);
            }
            catch (DllNotFoundException e) when (libtorch is not null)
            {
                throw new DllNotFoundException($"{libtorch.Value.Source}={libtorch.Value.Given}: {lib} there does not load: {e.Message}", e);
            }
        }
        var torchSharp = Path.Combine(nativeDir, TorchSharpLibrary);
        var layer = patch ? PatchedCopy(torchSharp) : torchSharp;
        try
        {
            NativeLibrary.Load(layer);
        }
        catch (DllNotFoundException e) when (libtorch is not null)
        {
            throw new DllNotFoundException($"{libtorch.Value.Source}={libtorch.Value.Given}: TorchSharp's {TorchSharpLibrary} does not bind to the " +
                $"libtorch there (another libtorch version than TorchSharp's?): {e.Message}", e);
        }
        var source = libtorch is { } l ? $"libtorch from {l.Directory} ({l.Source}); " : "";
        return patch && layer != torchSharp
            ? $"{source}system libstdc++ lacks {MissingVersion}; loaded patched copy {layer}"
            : patch ? $"{source}TorchSharp's layer {layer} (it does not ask for {MissingVersion})"
            : $"{source}TorchSharp's layer {layer}";
    }

    /// <summary>
    /// The <see cref="LibTorchDirVariable"/> folder, else the <see cref="LibTorchDirSetting"/> one, checked, with what named
    /// it (for errors); null when neither is set.
    /// </summary>
    private static (string Directory, string Given, string Source)? LibTorchOverride()
    {
        var value = Environment.GetEnvironmentVariable(LibTorchDirVariable);
        var (given, source) = !string.IsNullOrWhiteSpace(value) ? (value, LibTorchDirVariable)
            : configured is { } c ? (c.Directory, c.Source) : (null, null);
        if (given is null || source is null) return null;
        var dir = Path.GetFullPath(given);
        if (!Directory.Exists(dir))
            throw new DllNotFoundException($"{source}={given}: no such folder");
        var missing = RequiredLibraries.Where(lib => !File.Exists(Path.Combine(dir, lib))).ToList();
        if (missing.Count > 0)
            throw new DllNotFoundException($"{source}={given}: the folder has no {string.Join(", ", missing)} " +
                "(it should be the lib folder of a libtorch or PyTorch install, such as .../site-packages/torch/lib)");
        return (dir, given, source);
    }

    /// <summary>
    /// Where the native libraries are: <c>runtimes/linux-x64/native</c> in a build output, the program's own folder in a
    /// RID-specific publish (<c>dotnet publish -r linux-x64</c> flattens them, as bench/gpu-check.sh does).
    /// </summary>
    private static string? FindNativeDirectory()
    {
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"),
            AppContext.BaseDirectory,
            Path.Combine(Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location) ?? "", "runtimes", "linux-x64", "native"),
        };
        return candidates.FirstOrDefault(dir => File.Exists(Path.Combine(dir, TorchSharpLibrary)));
    }

    private static bool SystemLibStdCxxHas(string version)
    {
        if (!NativeLibrary.TryLoad("libstdc++.so.6", out var handle)) return false;
        return dlvsym(handle, VersionedSymbol, version) != IntPtr.Zero;
    }

    [DllImport("libc", EntryPoint = "dlvsym")]
    private static extern IntPtr dlvsym(IntPtr handle, string symbol, string version);

    /// <summary>Writes (once per content hash) the patched copy into the cache folder and returns its path.</summary>
    private static string PatchedCopy(string original)
    {
        var bytes = File.ReadAllBytes(original);
        var hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        var dir = Path.Combine(CacheFolders.Root, "torchsharp-native", hash);
        var target = Path.Combine(dir, TorchSharpLibrary);
        if (File.Exists(target)) return target;

        // A layer built on this machine (bench/gpu-run.sh rebuilds it against the machine's libtorch) asks only for what its
        // libstdc++ has: nothing to patch.
        if (!ElfVersionPatcher.MarkVersionWeak(bytes, MissingVersion)) return original;
        Directory.CreateDirectory(dir);
        // Several processes may start at once (test hosts): write to a unique temporary name, then rename.
        var temp = Path.Combine(dir, $"{TorchSharpLibrary}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, target, overwrite: true);
        return target;
    }
}

/// <summary>Edits the symbol-version requirements (<c>.gnu.version_r</c>) of an ELF64 little-endian image.</summary>
public static class ElfVersionPatcher
{
    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    /// <summary>
    /// Sets <c>VER_FLG_WEAK</c> on every requirement named <paramref name="version"/>. Returns whether one was found.
    /// </summary>
    public static bool MarkVersionWeak(byte[] image, string version)
    {
        var offsets = RequirementOffsets(image, version);
        foreach (var aux in offsets)
        {
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(aux + 4));
            BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(aux + 4), (ushort)(flags | VerFlgWeak));
        }
        return offsets.Count > 0;
    }

    /// <summary>Whether the image requires <paramref name="version"/>, and only weakly.</summary>
    public static bool IsWeak(byte[] image, string version)
    {
        var offsets = RequirementOffsets(image, version);
        return offsets.Count > 0 &&
               offsets.All(aux => (BinaryPrimitives.ReadUInt16LittleEndian(image.AsSpan(aux + 4)) & VerFlgWeak) != 0);
    }

    /// <summary>The file offsets of the <c>Vernaux</c> entries named <paramref name="version"/>.</summary>
    private static List<int> RequirementOffsets(byte[] image, string version)
    {
        var span = image.AsSpan();
        if (span.Length < 64 || !span[..4].SequenceEqual("\u007fELF"u8) || span[4] != 2 || span[5] != 1)
            throw new InvalidDataException("not a little-endian ELF64 image");

        var shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        var shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        var found = new List<int>();
        for (var i = 0; i < shnum; i++)
        {
            var sh = span[(int)(shoff + (long)i * shentsize)..];
            if (BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]) != ShtGnuVerneed) continue;
            var offset = (int)BinaryPrimitives.ReadUInt64LittleEndian(sh[0x18..]);
            var link = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x28..]);
            var count = (int)BinaryPrimitives.ReadUInt32LittleEndian(sh[0x2C..]);
            var strtab = (int)BinaryPrimitives.ReadUInt64LittleEndian(span[(int)(shoff + (long)link * shentsize + 0x18)..]);

            var verneed = offset;
            for (var n = 0; n < count; n++)
            {
                var auxCount = BinaryPrimitives.ReadUInt16LittleEndian(span[(verneed + 2)..]);
                var aux = verneed + (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(verneed + 8)..]);
                for (var a = 0; a < auxCount; a++)
                {
                    var nameOffset = (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(aux + 8)..]);
                    if (ReadCString(span, strtab + nameOffset) == version) found.Add(aux);
                    aux += (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(aux + 12)..]);
                }
                verneed += (int)BinaryPrimitives.ReadUInt32LittleEndian(span[(verneed + 12)..]);
            }
        }
        return found;
    }

    private static string ReadCString(ReadOnlySpan<byte> span, int start)
    {
        var end = span[start..].IndexOf((byte)0);
        return System.Text.Encoding.ASCII.GetString(span.Slice(start, end));
    }
}
