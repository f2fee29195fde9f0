using RapidFire.Spec.Data.Formats;

namespace RapidFire.Spec.Data;

/// <summary>
/// Where an experiment's data lives: the Example Structure File (ESF) of each partition and the folders of object
/// files, miscellaneous files and models, with an optional sample <see cref="Fraction"/>. Written as JSON (paths
/// relative to the JSON file's folder) and read with <see cref="Load"/> / <see cref="FromJson"/>, or built in C#
/// with <see cref="DataHandleBuilder"/>:
/// <code>
/// { "locators": { "train": "train.csv", "validation": "validation.csv", "test": "test.csv",
///                 "predict": "predict.csv", "objects": ".", "misc": "misc", "models": "models" },
///   "download_columns": null, "fraction": 1.0, "seed": 42 }
/// </code>
/// </summary>
/// <remarks>
/// <para><b>Locators.</b> Every locator is optional, but at least one partition (train, validation, test, predict)
/// must be given; each operation checks the partitions it needs (<see cref="HasPartition"/>, <see cref="GetLocator"/>).
/// <c>objects</c> defaults to the data handle's folder. A locator is a local path or <c>s3://bucket/key</c>
/// (read through an <see cref="S3.S3DataStorage"/>: ESFs and misc folders are downloaded to its cache, object files
/// as the sampled rows need them). Unknown keys are errors.</para>
/// <para><b>ESFs.</b> CSV/TSV, Parquet or Arrow IPC by extension (<see cref="EsfFormats"/>). A CSV column's type is
/// inferred from all its values (empty cells are nulls): all integers give int64, else all numbers double, else all
/// <c>true</c>/<c>false</c> boolean, else string. The <c>id</c> column is required: lower case, integer, unique,
/// never empty.</para>
/// <para><b>Object columns</b> hold paths relative to <c>objects</c> that must stay below it (<see cref="ObjectPath"/>).
/// <c>download_columns</c> lists them; each must be a string column of every ESF, except that the predict ESF may
/// lack some (predict files have no targets, and a target may be an object such as a mask) when the handle has
/// other partitions. When <c>download_columns</c> is null they are detected per ESF: a string column is an object
/// column when its first non-null value names an existing file below <c>objects</c>. An empty list means none.</para>
/// <para><b>Sampling.</b> <c>fraction</c> in (0, 1] keeps round(fraction × N) rows of every partition (at least one),
/// chosen with <c>seed</c> and kept in file order (<see cref="RowSampler"/>). Checks always cover the whole file.</para>
/// </remarks>
public sealed class DataHandle
{
    /// <summary>The seed used when a data handle gives none.</summary>
    public const int DefaultSeed = 42;

    /// <summary>The source name used in errors for a data handle built in code.</summary>
    public const string DefaultSource = "data handle";

    /// <summary>Creates a data handle from resolved locators, checking every argument (all faults are reported together).</summary>
    /// <param name="partitions">The ESF of each partition given; at least one.</param>
    /// <param name="objects">The folder object paths are relative to.</param>
    /// <param name="misc">The folder of miscellaneous files given to <c>InitializeRun</c>, if any.</param>
    /// <param name="models">The folder of model checkpoints, if any.</param>
    /// <param name="downloadColumns">The object columns; <see langword="null"/> to detect them.</param>
    /// <param name="fraction">The fraction of every partition's rows to use, in (0, 1].</param>
    /// <param name="seed">The seed of the sample.</param>
    /// <param name="source">The name errors give the data handle: its JSON file, or <see cref="DefaultSource"/>.</param>
    /// <exception cref="DataException">An argument is invalid; each error names the source and the setting.</exception>
    public DataHandle(IReadOnlyDictionary<Mode, Locator> partitions, Locator objects, Locator? misc = null,
        Locator? models = null, IReadOnlyList<string>? downloadColumns = null, double fraction = 1.0,
        int seed = DefaultSeed, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        ArgumentNullException.ThrowIfNull(objects);
        Source = source ?? DefaultSource;
        var errors = Check(Source, partitions.Count, downloadColumns, fraction);
        if (errors.Count > 0)
            throw new DataException(errors);
        var ordered = new OrderedDictionary<Mode, Locator>();
        foreach (var mode in ModeNames.All.Where(partitions.ContainsKey))
            ordered.Add(mode, partitions[mode]);
        Partitions = ordered;
        Objects = objects;
        Misc = misc;
        Models = models;
        DownloadColumns = downloadColumns?.ToList();
        Fraction = fraction;
        Seed = seed;
    }

    /// <summary>The name errors give this data handle: its JSON file, or <see cref="DefaultSource"/>.</summary>
    public string Source { get; }

    /// <summary>The ESF of each partition the handle gives, in the order train, validation, test, predict.</summary>
    public IReadOnlyDictionary<Mode, Locator> Partitions { get; }

    /// <summary>The folder object paths are relative to (by default the data handle's folder).</summary>
    public Locator Objects { get; }

    /// <summary>The folder of miscellaneous files (<c>misc_path</c> of <c>InitializeRun</c>), if given.</summary>
    public Locator? Misc { get; }

    /// <summary>The folder of model checkpoints, if given.</summary>
    public Locator? Models { get; }

    /// <summary>The object columns, or <see langword="null"/> when they are detected (see the remarks on the type).</summary>
    public IReadOnlyList<string>? DownloadColumns { get; }

    /// <summary>The fraction of every partition's rows to use, in (0, 1].</summary>
    public double Fraction { get; }

    /// <summary>The seed of the sample <see cref="Fraction"/> takes.</summary>
    public int Seed { get; }

    /// <summary>Whether the handle gives an ESF for <paramref name="mode"/>.</summary>
    public bool HasPartition(Mode mode) => Partitions.ContainsKey(mode);

    /// <summary>The ESF locator of a partition.</summary>
    /// <exception cref="DataException">The handle has no locator for the partition; the error names the handle.</exception>
    public Locator GetLocator(Mode mode) => Partitions.TryGetValue(mode, out var locator)
        ? locator
        : throw new DataException(Source, null,
            $"data handle {Source} has no '{mode.ToName()}' locator; it gives: {string.Join(", ", Partitions.Keys.Select(m => m.ToName()))}");

    /// <summary>Reads a data handle JSON file; relative paths in it are relative to its folder.</summary>
    /// <exception cref="DataException">The file is missing, is not valid JSON, or its content is invalid (all faults listed).</exception>
    public static DataHandle Load(string path)
    {
        var full = Path.GetFullPath(path);
        string json;
        try
        {
            json = System.IO.File.ReadAllText(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataException(full, null, e is FileNotFoundException or DirectoryNotFoundException
                ? "data handle file not found"
                : $"data handle file cannot be read: {e.Message}", e);
        }
        return FromJson(json, Path.GetDirectoryName(full)!, full);
    }

    /// <summary>Reads a data handle from JSON text.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="baseDirectory">The folder relative paths are relative to (and the default <c>objects</c>).</param>
    /// <param name="sourceName">The name errors give the handle, such as its file name.</param>
    /// <exception cref="DataException">The JSON is invalid or gives invalid settings (all faults listed).</exception>
    public static DataHandle FromJson(string json, string baseDirectory, string? sourceName = null) =>
        DataHandleJson.Parse(json, Path.GetFullPath(baseDirectory), sourceName ?? DefaultSource);

    /// <summary>
    /// This handle as JSON, with locators below <paramref name="baseDirectory"/> written relative to it (others in
    /// full). <see cref="FromJson"/> with the same folder reads back an equal handle.
    /// </summary>
    public string ToJson(string baseDirectory) => DataHandleJson.Write(this, Path.GetFullPath(baseDirectory));

    /// <summary>Starts a data handle in code; relative paths given to the builder resolve against <paramref name="baseDirectory"/>.</summary>
    public static DataHandleBuilder Builder(string baseDirectory) => new(baseDirectory);

    /// <summary>The local folder of miscellaneous files for <c>InitializeRun</c>, or <see langword="null"/> when none is given.</summary>
    /// <exception cref="DataException">The folder does not exist or cannot be made local.</exception>
    public string? GetMiscPath(IDataStorage? storage = null) =>
        Misc is null ? null : (storage ?? DataStorage.Default).GetLocalDirectory(Misc);

    /// <summary>
    /// Checks every partition's ESF as <see cref="Open"/> would (read, ids, object columns and paths), never stopping
    /// at the first file: the errors of all files, each file's list capped at 20 lines. For <c>rapidfire validate</c>.
    /// </summary>
    /// <param name="storage">Where to read; <see cref="DataStorage.Default"/> when <see langword="null"/>.</param>
    /// <param name="checkObjectFiles">Also report every object path whose file does not exist (one look-up per row).</param>
    public IReadOnlyList<DataError> Validate(IDataStorage? storage = null, bool checkObjectFiles = false)
    {
        storage ??= DataStorage.Default;
        var errors = new List<DataError>();
        var objects = ResolveObjects(storage, errors);
        foreach (var (mode, locator) in Partitions)
        {
            var fileErrors = new ErrorList(locator.ToString());
            Read(mode, locator, storage, objects, checkObjectFiles, fileErrors);
            errors.AddRange(fileErrors.ToList());
        }
        return errors;
    }

    /// <summary>
    /// Reads, checks and samples the ESF of a partition, and brings the object files its sampled rows name to this
    /// machine (<see cref="IDataStorage.FetchObjects"/>: nothing to do for local files, downloads for S3). An object
    /// file that cannot be brought fails only the rows naming it, when they are read (<see cref="Row.GetPath"/>).
    /// </summary>
    /// <param name="mode">The partition.</param>
    /// <param name="storage">Where to read; <see cref="DataStorage.Default"/> when <see langword="null"/>.</param>
    /// <param name="fetchObjects">Whether to bring the object files (false: check the ESF only, as validation does).</param>
    /// <exception cref="DataException">The handle has no such partition, or its ESF is invalid: every error of the file
    /// (up to 20 listed), each naming the file and, where there is one, the row.</exception>
    public EsfTable Open(Mode mode, IDataStorage? storage = null, bool fetchObjects = true)
    {
        storage ??= DataStorage.Default;
        var locator = GetLocator(mode);
        var objectErrors = new List<DataError>();
        var objects = ResolveObjects(storage, objectErrors);
        var errors = new ErrorList(locator.ToString());
        var read = Read(mode, locator, storage, objects, checkObjectFiles: false, errors);
        if (read is null || objects.LocalDirectory is null)
            throw new DataException([.. objectErrors, .. errors.ToList()]);
        var (content, result) = read.Value;
        var sample = RowSampler.Sample(result.Ids.Length, Fraction, Seed);
        var table = new EsfTable(locator, mode, content.Schema, content.Batches, result.Ids, sample, result.ObjectColumns,
            objects.LocalDirectory, Objects);
        if (fetchObjects && table.ObjectColumns.Count > 0)
            table.ObjectFailures = storage.FetchObjects(Objects, ObjectPaths(table));
        return table;
    }

    /// <summary>The normalized object paths the table's rows name (checked when the ESF was opened).</summary>
    private static HashSet<string> ObjectPaths(EsfTable table)
    {
        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var row in table)
            foreach (var column in table.ObjectColumns)
                if (!row.IsNull(column) && ObjectPath.TryNormalize(row.GetString(column), out var normalized, out _))
                    paths.Add(normalized);
        return paths;
    }

    private ObjectsRoot ResolveObjects(IDataStorage storage, List<DataError> errors)
    {
        try
        {
            return new ObjectsRoot(Objects, storage, storage.GetObjectsDirectory(Objects));
        }
        catch (DataException e)
        {
            errors.AddRange(e.Errors.Select(error => error with { Message = $"objects locator: {error.Message}" }));
            return new ObjectsRoot(Objects, storage, null);
        }
    }

    private (EsfContent Content, EsfCheck.Result Result)? Read(Mode mode, Locator locator, IDataStorage storage,
        ObjectsRoot objects, bool checkObjectFiles, ErrorList errors)
    {
        var mayLackDownloadColumns = mode == Mode.Predict && Partitions.Count > 1;
        var key = RecentReads.KeyOf(locator, $"{string.Join('\n', DownloadColumns ?? [])}|{mayLackDownloadColumns}|{objects.LocalDirectory}|{checkObjectFiles}");
        if (key is not null && RecentReads.Get(key) is { } recent) return recent;
        var read = ReadUncached(locator, storage, objects, checkObjectFiles, mayLackDownloadColumns, errors);
        if (key is not null && read is not null && errors.Count == 0) RecentReads.Put(key, read.Value);
        return read;
    }

    /// <summary>
    /// The last few local ESFs read and checked in this process, by path, size, time and what the check depends on:
    /// a fit's validation, the fit, and test or predict after it read each file once. The contents are immutable Arrow
    /// batches, so tables opened from one share it.
    /// </summary>
    private static class RecentReads
    {
        private const int Capacity = 4;
        private static readonly List<(string Key, (EsfContent, EsfCheck.Result) Read)> Entries = [];

        public static string? KeyOf(Locator locator, string check)
        {
            if (locator is not LocalLocator local) return null;
            var info = new FileInfo(local.FullPath);
            return info.Exists ? $"{info.FullName}|{info.Length}|{info.LastWriteTimeUtc.Ticks}|{check}" : null;
        }

        public static (EsfContent, EsfCheck.Result)? Get(string key)
        {
            lock (Entries)
                foreach (var (k, read) in Entries)
                    if (k == key) return read;
            return null;
        }

        public static void Put(string key, (EsfContent, EsfCheck.Result) read)
        {
            lock (Entries)
            {
                Entries.RemoveAll(e => e.Key == key);
                if (Entries.Count == Capacity) Entries.RemoveAt(0);
                Entries.Add((key, read));
            }
        }
    }

    private (EsfContent Content, EsfCheck.Result Result)? ReadUncached(Locator locator, IDataStorage storage,
        ObjectsRoot objects, bool checkObjectFiles, bool mayLackDownloadColumns, ErrorList errors)
    {
        var before = errors.Count;
        var content = EsfReader.Read(locator, storage, errors);
        if (content is null)
            return null;
        var result = EsfCheck.Run(content, errors, DownloadColumns, mayLackDownloadColumns, objects, checkObjectFiles);
        // The reader's errors (a ragged row) fail the file as the check's do, each naming its row.
        return result is null || errors.Count > before ? null : (content, result);
    }

    internal static List<DataError> Check(string source, int partitionCount, IReadOnlyList<string>? downloadColumns, double fraction)
    {
        var errors = new List<DataError>();
        if (partitionCount == 0)
            errors.Add(new DataError(source, null,
                "locators: no partition is given; give at least one of train, validation, test, predict"));
        if (!(fraction > 0 && fraction <= 1))
            errors.Add(new DataError(source, null, $"fraction must be in (0, 1], got {fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)}"));
        if (downloadColumns is not null)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var column in downloadColumns)
            {
                if (string.IsNullOrWhiteSpace(column))
                    errors.Add(new DataError(source, null, "download_columns: a column name is empty"));
                else if (!seen.Add(column))
                    errors.Add(new DataError(source, null, $"download_columns: '{column}' is listed twice"));
                else if (column == EsfColumns.Id)
                    errors.Add(new DataError(source, null, "download_columns: 'id' is the id column, not an object column"));
            }
        }
        return errors;
    }
}
