using System.Globalization;
using Apache.Arrow;
using RapidFire.Spec.Data;

namespace RapidFire.Spec;

/// <summary>
/// One row of an Example Structure File, as given to <c>MLSpec.RowPrep</c>: a view of one row of the file's Arrow
/// record batch (nothing is copied). Columns are read by name with typed getters; an object column's value is the
/// path of its object file, which <see cref="GetPath"/> (and the indexer) give as an absolute local path.
/// </summary>
/// <remarks>
/// Getters convert when no information is lost in the common ML sense: any integer column reads with
/// <see cref="GetInt64"/> (and with <see cref="GetInt32"/> when the value fits), any numeric column with
/// <see cref="GetDouble"/> and <see cref="GetSingle"/>. A string never parses as a number: the ESF's types decide.
/// Every error is a <see cref="DataException"/> that names the file, the row (its row number and id) and the column.
/// </remarks>
public sealed class Row
{
    private readonly EsfTable table;
    private readonly RecordBatch batch;
    private readonly int rowInBatch;

    internal Row(EsfTable table, int index, int fileRow, RecordBatch batch, int rowInBatch)
    {
        this.table = table;
        this.batch = batch;
        this.rowInBatch = rowInBatch;
        Index = index;
        FileRow = fileRow + 1;
    }

    /// <summary>The row's id: the value of its <c>id</c> column.</summary>
    public long Id => table.Ids[Index];

    /// <summary>The row's position in its partition (0-based, after sampling).</summary>
    public int Index { get; }

    /// <summary>The row's number in its file: 1-based, the header excluded (as errors give it).</summary>
    public long FileRow { get; }

    /// <summary>The file this row comes from.</summary>
    public string File => table.File;

    /// <summary>The partition this row belongs to.</summary>
    public Mode Mode => table.Mode;

    /// <summary>The column names, in the file's order.</summary>
    public IReadOnlyList<string> Columns => table.Columns;

    /// <summary>The columns whose values are object file paths.</summary>
    public IReadOnlyList<string> ObjectColumns => table.ObjectColumns;

    /// <summary>Whether the ESF has <paramref name="column"/> (case-sensitive).</summary>
    public bool Has(string column) => table.HasColumn(column);

    /// <summary>Whether <paramref name="column"/> is an object column.</summary>
    public bool IsObjectColumn(string column) => table.IsObjectColumn(column);

    /// <summary>Whether the value of <paramref name="column"/> is null (an empty CSV cell).</summary>
    public bool IsNull(string column) => ArrowValues.IsNull(Column(column), rowInBatch);

    /// <summary>The value of an integer column.</summary>
    public long GetInt64(string column) => Integer(column, nameof(GetInt64));

    /// <summary>The value of an integer column that fits in an <see cref="int"/>.</summary>
    public int GetInt32(string column)
    {
        var value = Integer(column, nameof(GetInt32));
        return value is >= int.MinValue and <= int.MaxValue
            ? (int)value
            : throw Fail(column, $"holds {value}, which does not fit in an int ({nameof(GetInt32)}); use {nameof(GetInt64)}");
    }

    /// <summary>The value of a numeric column (integer or floating point) as a <see cref="double"/>.</summary>
    public double GetDouble(string column) => Number(column, nameof(GetDouble));

    /// <summary>The value of a numeric column (integer or floating point) as a <see cref="float"/>.</summary>
    public float GetSingle(string column) => (float)Number(column, nameof(GetSingle));

    /// <summary>
    /// The values of many numeric columns at once, as <see cref="float"/>s in the order given (for a spec reading a row of
    /// pixels or features): the columns are looked up once per list, not once per row, and read straight from the
    /// ESF's typed arrays. Errors are those of <see cref="GetSingle"/>, naming the first column at fault.
    /// </summary>
    /// <example><c>var pixels = torch.tensor(row.GetSingles(PixelColumns));</c> with <c>static readonly string[] PixelColumns</c>.</example>
    public float[] GetSingles(IReadOnlyList<string> columns)
    {
        var values = new float[columns.Count];
        GetSingles(columns, values);
        return values;
    }

    /// <summary>The values of the columns from <paramref name="first"/> to <paramref name="last"/> (both included, in the file's order), as <see cref="GetSingles(IReadOnlyList{string})"/>.</summary>
    public float[] GetSingles(string first, string last) => GetSingles(table.ColumnRange(first, last));

    /// <summary>Writes the values of <paramref name="columns"/> into <paramref name="into"/> (as <see cref="GetSingles(IReadOnlyList{string})"/>, without allocating).</summary>
    /// <remarks>Compiled optimized from its first call: a first epoch reads every row through it once.</remarks>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public void GetSingles(IReadOnlyList<string> columns, Span<float> into)
    {
        if (into.Length != columns.Count)
            throw new ArgumentException($"{columns.Count} columns need a span of {columns.Count} values, not {into.Length}", nameof(into));
        var indices = table.ColumnIndices(columns);
        for (var i = 0; i < indices.Length; i++)
        {
            var array = indices[i] >= 0 ? batch.Column(indices[i]) : null;
            if (array is null || array.IsNull(rowInBatch))
            {
                into[i] = GetSingle(columns[i]); // throws, naming the column
                continue;
            }
            into[i] = array switch
            {
                UInt8Array a => a.Values[rowInBatch],
                Int8Array a => a.Values[rowInBatch],
                Int16Array a => a.Values[rowInBatch],
                Int32Array a => a.Values[rowInBatch],
                Int64Array a => a.Values[rowInBatch],
                FloatArray a => a.Values[rowInBatch],
                DoubleArray a => (float)a.Values[rowInBatch],
                _ => GetSingle(columns[i]),
            };
        }
    }

    /// <summary>The value of a boolean column.</summary>
    public bool GetBoolean(string column) =>
        ArrowValues.GetBoolean(Typed(column, ValueKind.Boolean, nameof(GetBoolean)), rowInBatch)!.Value;

    /// <summary>The value of a string column as written in the file (for an object column: its relative path).</summary>
    public string GetString(string column) =>
        ArrowValues.GetString(Typed(column, ValueKind.String, nameof(GetString)), rowInBatch)!;

    /// <summary>
    /// The absolute local path of the object file an object column names, below the data handle's <c>objects</c>
    /// locator (for an S3 locator, the downloaded copy).
    /// </summary>
    /// <exception cref="DataException">The column is no object column, its value is null or no acceptable path, or the
    /// object could not be downloaded (the message names the id, the column and the object's locator).</exception>
    public string GetPath(string objectColumn)
    {
        var array = Column(objectColumn);
        if (!table.IsObjectColumn(objectColumn))
        {
            var objects = table.ObjectColumns.Count == 0 ? "this ESF has none" : "its object columns are: " + string.Join(", ", table.ObjectColumns);
            throw Fail(objectColumn, $"is not an object column, so it has no path ({nameof(GetPath)}); {objects}. "
                                     + "List it in the data handle's download_columns if it holds object paths");
        }
        NotNull(objectColumn, array, nameof(GetPath));
        var relative = ArrowValues.GetString(array, rowInBatch)!;
        // The ESF's paths were checked when it was opened; checking again costs little and keeps the rule in one place.
        if (!ObjectPath.TryNormalize(relative, out var normalized, out var problem))
            throw Fail(objectColumn, $"path '{relative}' {problem}");
        if (table.ObjectFailures.Count > 0 && table.ObjectFailures.TryGetValue(normalized, out var failure))
            throw Fail(objectColumn, $"object file '{relative}' could not be downloaded: {failure}");
        return Path.Join(table.ObjectsDirectory, normalized.Replace('/', Path.DirectorySeparatorChar));
    }

    /// <summary>
    /// The value of a column as an object: <see cref="long"/> for integers, <see cref="double"/> (or
    /// <see cref="float"/> for a float32 column), <see cref="bool"/>, <see cref="string"/>; for an object column
    /// the absolute local path (as <see cref="GetPath"/>); <see langword="null"/> for a null.
    /// </summary>
    public object? this[string column]
    {
        get
        {
            var array = Column(column);
            if (ArrowValues.IsNull(array, rowInBatch))
                return null;
            if (table.IsObjectColumn(column))
                return GetPath(column);
            return ArrowValues.TryBox(array, rowInBatch, out var value)
                ? value
                : throw Fail(column, $"has Arrow type {ArrowValues.TypeName(array.Data.DataType)}, which a Row cannot read");
        }
    }

    /// <summary>
    /// The value of a column as <typeparamref name="T"/>: <see cref="long"/>, <see cref="int"/>, <see cref="double"/>,
    /// <see cref="float"/>, <see cref="bool"/> and <see cref="string"/> read like the getter of that type (for an
    /// object column <see cref="string"/> gives the absolute path); their nullable forms (<c>long?</c>...) give
    /// <see langword="null"/> for a null; <see cref="object"/> reads like the indexer.
    /// </summary>
    public T Get<T>(string column)
    {
        var type = typeof(T);
        var underlying = Nullable.GetUnderlyingType(type);
        if (underlying is not null && IsNull(column))
            return default!;
        var target = underlying ?? type;
        object? value =
            target == typeof(long) ? GetInt64(column) :
            target == typeof(int) ? GetInt32(column) :
            target == typeof(double) ? GetDouble(column) :
            target == typeof(float) ? GetSingle(column) :
            target == typeof(bool) ? GetBoolean(column) :
            target == typeof(string) ? (table.IsObjectColumn(column) ? GetPath(column) : GetString(column)) :
            target == typeof(object) ? this[column] :
            throw Fail(column, $"Get<{type.Name}> is not supported; use long, int, double, float, bool, string (or their nullable forms) or object");
        return (T)value!;
    }

    /// <inheritdoc />
    public override string ToString()
    {
        var cells = Columns.Select(c => $"{c}={Show(c)}");
        return $"{Path.GetFileName(File)} row {FileRow}: {string.Join(", ", cells)}";
    }

    private string Show(string column) => ArrowValues.Show(Column(column), rowInBatch);

    private IArrowArray Column(string column)
    {
        ArgumentNullException.ThrowIfNull(column);
        var index = table.ColumnIndex(column);
        if (index >= 0)
            return batch.Column(index);
        var similar = Columns.FirstOrDefault(c => string.Equals(c, column, StringComparison.OrdinalIgnoreCase));
        var hint = similar is null ? "" : $" (did you mean '{similar}'? names are case-sensitive)";
        throw Fail(column, $"does not exist{hint}; the columns are: {string.Join(", ", Columns)}");
    }

    private long Integer(string column, string getter)
    {
        var floating = Column(column);
        if (KindOf(floating) == ValueKind.Floating)
        {
            // A column of whole numbers read as doubles (one cell such as NaN or 1.5 made it so): its whole values read
            // as integers, and the cell that is not one is the error, naming its own row.
            NotNull(column, floating, getter);
            ArrowValues.TryGetDouble(floating, rowInBatch, out var real);
            return double.IsInteger(real) && real is >= long.MinValue and < 9.2233720368547758e18
                ? (long)real
                : throw Fail(column, $"holds {real.ToString(System.Globalization.CultureInfo.InvariantCulture)}, which is not an integer ({getter}); " +
                                     "the column's values are numbers, not all integers: fix this cell, or read the column with GetDouble or GetSingle");
        }
        var array = Typed(column, ValueKind.Integer, getter);
        if (ArrowValues.TryGetInt64(array, rowInBatch, out var value))
            return value;
        throw Fail(column, $"holds {ArrowValues.Show(array, rowInBatch)}, which does not fit in a long ({getter})");
    }

    private double Number(string column, string getter)
    {
        var array = Column(column);
        if (KindOf(array) is not (ValueKind.Integer or ValueKind.Floating))
            throw WrongType(column, array, getter, "a number");
        NotNull(column, array, getter);
        ArrowValues.TryGetDouble(array, rowInBatch, out var value);
        return value;
    }

    private static ValueKind KindOf(IArrowArray array) => ArrowValues.KindOf(array.Data.DataType);

    private IArrowArray Typed(string column, ValueKind kind, string getter)
    {
        var array = Column(column);
        if (KindOf(array) != kind)
            throw WrongType(column, array, getter, kind switch
            {
                ValueKind.Integer => "an integer",
                ValueKind.Boolean => "a boolean",
                _ => "a string",
            });
        NotNull(column, array, getter);
        return array;
    }

    private void NotNull(string column, IArrowArray array, string getter)
    {
        if (ArrowValues.IsNull(array, rowInBatch))
            throw Fail(column, $"is null (an empty cell) where {getter} needs a value; check {nameof(IsNull)} first, or use Get<T?> with a nullable T");
    }

    private DataException WrongType(string column, IArrowArray array, string getter, string wanted)
    {
        var type = ArrowValues.TypeName(array.Data.DataType);
        var use = KindOf(array) switch
        {
            ValueKind.Integer => $"{nameof(GetInt64)} or {nameof(GetInt32)}",
            ValueKind.Floating => $"{nameof(GetDouble)} or {nameof(GetSingle)}",
            ValueKind.Boolean => nameof(GetBoolean),
            ValueKind.String => table.IsObjectColumn(column) ? $"{nameof(GetPath)} or {nameof(GetString)}" : nameof(GetString),
            _ => null,
        };
        return Fail(column, $"has Arrow type {type}, so {getter} cannot read it as {wanted}"
                            + (use is null ? "; a Row reads integer, floating-point, boolean and string columns" : $"; use {use}"));
    }

    private DataException Fail(string column, string message) =>
        new(File, FileRow, string.Create(CultureInfo.InvariantCulture, $"id {Id}, column '{column}' {message}"));
}
