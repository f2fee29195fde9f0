namespace RapidFire.Spec.Data;

/// <summary>The file formats an Example Structure File may have, chosen by its file name's extension.</summary>
public enum EsfFormat
{
    /// <summary>Comma-separated values with a header row (<c>.csv</c>); column types are inferred.</summary>
    Csv,
    /// <summary>Tab-separated values with a header row (<c>.tsv</c>); read like <see cref="Csv"/>.</summary>
    Tsv,
    /// <summary>Apache Parquet (<c>.parquet</c>, <c>.pq</c>); column types come from the file.</summary>
    Parquet,
    /// <summary>Arrow IPC, file or stream format (<c>.arrow</c>, <c>.feather</c>, <c>.ipc</c>, <c>.arrows</c>).</summary>
    ArrowIpc,
}

/// <summary>Choosing an <see cref="EsfFormat"/> from a file name.</summary>
public static class EsfFormats
{
    /// <summary>The extensions RapidFire reads, as a sentence for error messages.</summary>
    public const string KnownExtensions = ".csv, .tsv, .parquet, .pq, .arrow, .feather, .ipc or .arrows";

    /// <summary>The format of an ESF by its extension (case-insensitive), or <see langword="null"/> for an unknown one.</summary>
    public static EsfFormat? FromFileName(string fileName) => Path.GetExtension(fileName).ToLowerInvariant() switch
    {
        ".csv" => EsfFormat.Csv,
        ".tsv" => EsfFormat.Tsv,
        ".parquet" or ".pq" => EsfFormat.Parquet,
        ".arrow" or ".feather" or ".ipc" or ".arrows" => EsfFormat.ArrowIpc,
        _ => null,
    };
}
