using System.Globalization;
using System.Numerics;
using Apache.Arrow;
using Apache.Arrow.Types;
using nietras.SeparatedValues;

namespace RapidFire.Spec.Data.Formats;

/// <summary>
/// Reads a CSV (or TSV) ESF with Sep. The first row is the header. Blank lines are skipped and not counted; a row
/// with a different number of fields than the header is an error naming its row.
/// </summary>
/// <remarks>
/// Column types are inferred from all of a column's values, empty cells being nulls: every non-empty value an integer
/// gives the narrowest of UInt8, Int8, Int16, Int32 and Int64 that holds them all (a <see cref="Row"/> reads any of
/// them as <see cref="long"/>); else every one a number gives Double; else every one <c>true</c>/<c>false</c> (any
/// case) gives Boolean; else String. A column with no values is String. The <c>id</c> column is Int64, or String when
/// some value is not an integer (the id check then names those rows).
/// The file is read twice, once to choose the types and once to fill typed columns, so that memory holds the values
/// in their own width, never as strings: 784 pixel columns of a row take 784 bytes.
/// </remarks>
internal static class CsvEsfReader
{
    public static EsfContent? Read(Stream stream, char separator, ErrorList errors)
    {
        var bytes = Bytes(stream);
        var types = Infer(bytes, separator, errors, out var names, out var length);
        if (names is null)
        {
            errors.Add(null, "is empty: an ESF needs a header row with an 'id' column");
            return null;
        }
        if (!EsfColumns.CheckNames(names, errors))
            return null;
        var columns = types.Select(t => t.Builder(length)).ToArray();
        ForEachSlice(columns.Length, (from, to) => ForEachRow(bytes, separator, row =>
        {
            for (var i = from; i < to; i++)
                columns[i].Append(i < row.ColCount ? row[i].Span : default);
        }, skipHeader: true));

        var fields = new List<Field>(names.Length);
        var arrays = new List<IArrowArray>(names.Length);
        for (var i = 0; i < names.Length; i++)
        {
            var array = columns[i].Build();
            fields.Add(new Field(names[i], array.Data.DataType, nullable: true));
            arrays.Add(array);
        }
        var schema = new Schema(fields, null);
        return new EsfContent(schema, length == 0 ? [] : [new RecordBatch(schema, arrays, length)]);
    }

    /// <summary>The file's bytes (each pass reads them again, from memory).</summary>
    private static ArraySegment<byte> Bytes(Stream stream)
    {
        if (stream is MemoryStream memory && memory.TryGetBuffer(out var buffer)) return buffer[(int)memory.Position..];
        var copy = new MemoryStream();
        stream.CopyTo(copy);
        return new ArraySegment<byte>(copy.GetBuffer(), 0, (int)copy.Length);
    }

    /// <summary>
    /// Runs <paramref name="work"/> over slices of the columns, one per core (up to 4) for a wide file: every slice reads
    /// all rows, so the cells' parsing, the costly part, is shared out while each row is split into fields once per core.
    /// </summary>
    private static void ForEachSlice(int columns, Action<int, int> work)
    {
        var slices = columns >= 64 ? Math.Clamp(Environment.ProcessorCount, 1, 4) : 1;
        if (slices == 1)
        {
            work(0, columns);
            return;
        }
        Parallel.For(0, slices, s => work(columns * s / slices, columns * (s + 1) / slices));
    }

    private delegate void RowAction(SepReader.Row row);

    /// <summary>Calls <paramref name="action"/> on the header (unless <paramref name="skipHeader"/>) and every data row, blank lines skipped.</summary>
    private static void ForEachRow(ArraySegment<byte> bytes, char separator, RowAction action, bool skipHeader = false)
    {
        using var reader = Sep.New(separator)
            .Reader(o => o with { HasHeader = false, Unescape = true, DisableColCountCheck = true })
            .From(new MemoryStream(bytes.Array!, bytes.Offset, bytes.Count, writable: false));
        foreach (var row in reader)
        {
            if (row.ColCount == 1 && row[0].Span.IsWhiteSpace())
                continue;
            if (skipHeader)
            {
                skipHeader = false;
                continue;
            }
            action(row);
        }
    }

    /// <summary>The first pass: the header, the number of data rows, ragged rows (errors) and each column's type.</summary>
    private static ColumnType[] Infer(ArraySegment<byte> bytes, char separator, ErrorList errors, out string[]? names, out int length)
    {
        string[]? header = null;
        var rows = 0;
        ForEachRow(bytes, separator, row =>
        {
            if (header is null)
            {
                header = new string[row.ColCount];
                for (var i = 0; i < header.Length; i++)
                    header[i] = row[i].ToString();
                return;
            }
            rows++;
            // A ragged row is an error, but it stays (cut or padded with nulls) so that later rows keep their numbers.
            if (row.ColCount != header.Length)
                errors.Add(rows, $"has {row.ColCount} field{(row.ColCount == 1 ? "" : "s")}, the header has {header.Length}");
        });
        names = header;
        length = rows;
        if (header is null) return [];
        var types = header.Select(n => new ColumnType(n == EsfColumns.Id)).ToArray();
        ForEachSlice(types.Length, (from, to) => ForEachRow(bytes, separator, row =>
        {
            for (var i = from; i < to && i < row.ColCount; i++)
                types[i].See(row[i].Span);
        }, skipHeader: true));
        return types;
    }

    /// <summary>
    /// An integer cell: plain digits with an optional sign are read directly (most cells of a numeric ESF; several
    /// times faster than <see cref="long.TryParse(ReadOnlySpan{char}, NumberStyles, IFormatProvider, out long)"/>),
    /// anything else as <see cref="NumberStyles.Integer"/> does.
    /// </summary>
    private static bool ParseInteger(ReadOnlySpan<char> cell, out long value)
    {
        var negative = cell.Length > 1 && cell[0] == '-';
        var digits = negative || (cell.Length > 1 && cell[0] == '+') ? cell[1..] : cell;
        if (digits.Length is > 0 and <= 18)
        {
            long v = 0;
            foreach (var c in digits)
            {
                var d = c - '0';
                if ((uint)d > 9) return long.TryParse(cell, NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
                v = v * 10 + d;
            }
            value = negative ? -v : v;
            return true;
        }
        return long.TryParse(cell, NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>What the values of one column allow, narrowed value by value.</summary>
    private sealed class ColumnType(bool integerOrString)
    {
        private bool any, integers = true, floats = !integerOrString, booleans = !integerOrString;
        private long min = long.MaxValue, max = long.MinValue;

        public void See(ReadOnlySpan<char> cell)
        {
            if (cell.Length == 0) return;
            any = true;
            if (integers && ParseInteger(cell, out var l))
            {
                min = Math.Min(min, l);
                max = Math.Max(max, l);
                return;
            }
            integers = false;
            if (floats)
            {
                if (double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) return;
                floats = false;
            }
            if (booleans && !bool.TryParse(cell, out _)) booleans = false;
        }

        public ColumnBuilder Builder(int length)
        {
            if (!any) return new StringColumn(length);
            if (integers)
            {
                if (integerOrString) return new IntegerColumn<long, Int64Array, Int64Array.Builder>(new Int64Array.Builder(), length);
                if (min >= byte.MinValue && max <= byte.MaxValue) return new IntegerColumn<byte, UInt8Array, UInt8Array.Builder>(new UInt8Array.Builder(), length);
                if (min >= sbyte.MinValue && max <= sbyte.MaxValue) return new IntegerColumn<sbyte, Int8Array, Int8Array.Builder>(new Int8Array.Builder(), length);
                if (min >= short.MinValue && max <= short.MaxValue) return new IntegerColumn<short, Int16Array, Int16Array.Builder>(new Int16Array.Builder(), length);
                if (min >= int.MinValue && max <= int.MaxValue) return new IntegerColumn<int, Int32Array, Int32Array.Builder>(new Int32Array.Builder(), length);
                return new IntegerColumn<long, Int64Array, Int64Array.Builder>(new Int64Array.Builder(), length);
            }
            if (floats) return new DoubleColumn(length);
            if (booleans) return new BooleanColumn(length);
            return new StringColumn(length);
        }
    }

    /// <summary>Fills one typed column, cell by cell (an empty cell is a null).</summary>
    private abstract class ColumnBuilder
    {
        public abstract void Append(ReadOnlySpan<char> cell);

        public abstract IArrowArray Build();
    }

    private sealed class IntegerColumn<T, TArray, TBuilder> : ColumnBuilder
        where T : struct, IBinaryInteger<T>
        where TArray : PrimitiveArray<T>
        where TBuilder : PrimitiveArrayBuilder<T, TArray, TBuilder>
    {
        private readonly TBuilder builder;

        public IntegerColumn(TBuilder builder, int length)
        {
            this.builder = builder;
            builder.Reserve(length);
        }

        public override void Append(ReadOnlySpan<char> cell)
        {
            if (cell.Length == 0) builder.AppendNull();
            else builder.Append(T.CreateTruncating(ParseInteger(cell, out var value) ? value : throw new FormatException($"'{cell}' is no integer")));
        }

        public override IArrowArray Build() => builder.Build();
    }

    private sealed class DoubleColumn(int length) : ColumnBuilder
    {
        private readonly DoubleArray.Builder builder = new DoubleArray.Builder().Reserve(length);

        public override void Append(ReadOnlySpan<char> cell)
        {
            if (cell.Length == 0) builder.AppendNull();
            else builder.Append(double.Parse(cell, NumberStyles.Float, CultureInfo.InvariantCulture));
        }

        public override IArrowArray Build() => builder.Build();
    }

    private sealed class BooleanColumn(int length) : ColumnBuilder
    {
        private readonly BooleanArray.Builder builder = new BooleanArray.Builder().Reserve(length);

        public override void Append(ReadOnlySpan<char> cell)
        {
            if (cell.Length == 0) builder.AppendNull();
            else builder.Append(bool.Parse(cell));
        }

        public override IArrowArray Build() => builder.Build();
    }

    private sealed class StringColumn(int length) : ColumnBuilder
    {
        private readonly StringArray.Builder builder = new StringArray.Builder().Reserve(length);

        public override void Append(ReadOnlySpan<char> cell)
        {
            if (cell.Length == 0) builder.AppendNull();
            else builder.Append(cell.ToString());
        }

        public override IArrowArray Build() => builder.Build();
    }
}
