using System.Collections;
using Apache.Arrow;

namespace RapidFire.Spec.Data;

/// <summary>
/// One partition of a data handle, loaded and checked: the rows of its Example Structure File that the handle's
/// <c>fraction</c> keeps, in the file's order, each given to <c>MLSpec.RowPrep</c> as a <see cref="Row"/>.
/// </summary>
/// <remarks>
/// <see cref="Batches"/> are the whole file as read (a sample is a list of row positions into them, not a copy);
/// <see cref="RowCount"/>, <see cref="Ids"/>, the indexer and the enumerator cover the sampled rows only.
/// An ESF holds paths and labels, not payloads, so a whole file is kept in memory.
/// A table is immutable once opened: any number of threads may read rows from it at once.
/// </remarks>
public sealed class EsfTable : IReadOnlyList<Row>
{
    private readonly int[] fileRows;
    private readonly int[] batchStarts;
    private readonly long[] ids;
    private readonly Dictionary<string, int> columnIndex;
    private readonly HashSet<string> objectColumnSet;
    private Dictionary<long, int>? byId;

    internal EsfTable(Locator locator, Mode mode, Schema schema, IReadOnlyList<RecordBatch> batches, long[] fileIds,
        int[] sample, IReadOnlyList<string> objectColumns, string objectsDirectory, Locator? objectsLocator = null)
    {
        ObjectsLocator = objectsLocator ?? new LocalLocator(objectsDirectory);
        Locator = locator;
        Mode = mode;
        Schema = schema;
        Batches = batches;
        Columns = schema.FieldsList.Select(f => f.Name).ToList();
        columnIndex = Columns.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i, StringComparer.Ordinal);
        ObjectColumns = objectColumns;
        objectColumnSet = new HashSet<string>(objectColumns, StringComparer.Ordinal);
        ObjectsDirectory = objectsDirectory;
        FileRowCount = fileIds.Length;
        fileRows = sample;
        ids = sample.Length == fileIds.Length ? fileIds : sample.Select(r => fileIds[r]).ToArray();
        batchStarts = new int[batches.Count];
        for (int b = 0, start = 0; b < batches.Count; start += batches[b].Length, b++)
            batchStarts[b] = start;
    }

    /// <summary>Where the ESF was read from.</summary>
    public Locator Locator { get; }

    /// <summary>The ESF's name as errors give it: its full path, or its <c>s3://</c> locator.</summary>
    public string File => Locator.ToString();

    /// <summary>The partition this ESF is.</summary>
    public Mode Mode { get; }

    /// <summary>The ESF's columns and their Arrow types (CSV types are inferred, see <see cref="DataHandle"/>).</summary>
    public Schema Schema { get; }

    /// <summary>The column names, in the file's order.</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>The columns whose values are paths of object files below <see cref="ObjectsDirectory"/>.</summary>
    public IReadOnlyList<string> ObjectColumns { get; }

    /// <summary>The local folder object paths are relative to (absolute).</summary>
    public string ObjectsDirectory { get; }

    /// <summary>The data handle's <c>objects</c> locator (local, or the S3 folder <see cref="ObjectsDirectory"/> is a copy of).</summary>
    public Locator ObjectsLocator { get; }

    /// <summary>
    /// The object files (normalized paths) that could not be brought to this machine when the partition opened, each with
    /// why; <see cref="Row.GetPath"/> of a row naming one fails with that reason. Empty for local files.
    /// </summary>
    public IReadOnlyDictionary<string, string> ObjectFailures { get; internal set; } =
        System.Collections.ObjectModel.ReadOnlyDictionary<string, string>.Empty;

    /// <summary>The whole file's record batches, as read.</summary>
    public IReadOnlyList<RecordBatch> Batches { get; }

    /// <summary>How many rows the partition has after sampling.</summary>
    public int RowCount => ids.Length;

    /// <summary>How many data rows the file has.</summary>
    public int FileRowCount { get; }

    /// <summary>The ids of the partition's rows, in row order (an array the partition does not change).</summary>
    public IReadOnlyList<long> Ids => ids;

    /// <summary>Whether <paramref name="column"/> is a column of this ESF (names are case-sensitive).</summary>
    public bool HasColumn(string column) => columnIndex.ContainsKey(column);

    /// <summary>Whether <paramref name="column"/> is an object column.</summary>
    public bool IsObjectColumn(string column) => objectColumnSet.Contains(column);

    /// <summary>The row at position <paramref name="index"/> (0-based, after sampling).</summary>
    public Row this[int index] => GetRow(index);

    /// <summary>The row at position <paramref name="index"/> (0-based, after sampling).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside 0..RowCount-1.</exception>
    public Row GetRow(int index)
    {
        if ((uint)index >= (uint)ids.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{File} has {ids.Length} rows in its {Mode.ToName()} partition");
        var fileRow = fileRows[index];
        var batch = System.Array.BinarySearch(batchStarts, fileRow);
        if (batch < 0)
            batch = ~batch - 1;
        return new Row(this, index, fileRow, Batches[batch], fileRow - batchStarts[batch]);
    }

    /// <summary>The position of the row with <paramref name="id"/>, or -1 when no row of the partition has it.</summary>
    public int IndexOf(long id)
    {
        byId ??= ids.Select((value, i) => (value, i)).ToDictionary(p => p.value, p => p.i);
        return byId.TryGetValue(id, out var index) ? index : -1;
    }

    /// <summary>Whether a row of the partition has <paramref name="id"/>.</summary>
    public bool ContainsId(long id) => IndexOf(id) >= 0;

    /// <summary>The row with <paramref name="id"/>, if the partition has it.</summary>
    public bool TryGetRowById(long id, out Row row)
    {
        var index = IndexOf(id);
        row = index >= 0 ? GetRow(index) : null!;
        return index >= 0;
    }

    /// <summary>The row with <paramref name="id"/>.</summary>
    /// <exception cref="DataException">No row of the partition has the id (sampled-out rows count as absent).</exception>
    public Row GetRowById(long id) => TryGetRowById(id, out var row)
        ? row
        : throw new DataException(File, null, $"no row of the {Mode.ToName()} partition has id {id}");

    internal int ColumnIndex(string column) => columnIndex.TryGetValue(column, out var i) ? i : -1;

    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<IReadOnlyList<string>, int[]> resolved = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), string[]> ranges = new();

    /// <summary>The positions of <paramref name="columns"/> (-1 for a missing one), looked up once per list instance.</summary>
    internal int[] ColumnIndices(IReadOnlyList<string> columns) =>
        resolved.GetValue(columns, list => list.Select(ColumnIndex).ToArray());

    /// <summary>The columns from <paramref name="first"/> to <paramref name="last"/>, in the file's order.</summary>
    internal IReadOnlyList<string> ColumnRange(string first, string last) => ranges.GetOrAdd((first, last), key =>
    {
        var (from, to) = (ColumnIndex(key.Item1), ColumnIndex(key.Item2));
        if (from < 0 || to < 0 || to < from)
            throw new DataException(File, null, $"no column range '{key.Item1}'..'{key.Item2}': " +
                                                (from < 0 ? $"there is no column '{key.Item1}'" : to < 0 ? $"there is no column '{key.Item2}'" : $"'{key.Item2}' comes before '{key.Item1}'"));
        return Columns.Skip(from).Take(to - from + 1).ToArray();
    });

    /// <inheritdoc />
    public int Count => RowCount;

    /// <inheritdoc />
    public IEnumerator<Row> GetEnumerator()
    {
        for (var i = 0; i < ids.Length; i++)
            yield return GetRow(i);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
