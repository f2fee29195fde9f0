using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Types;
using nietras.SeparatedValues;

namespace RapidFire.Spec.Data.Formats;

/// <summary>
/// Reads a CSV (or TSV) ESF with Sep. The first row is the header. Blank lines are skipped and not counted; a row
/// with a different number of fields than the header is an error naming its row.
/// </summary>
/// <remarks>
/// Column types are inferred from all of a column's values, empty cells being nulls:
/// every non-empty value an integer (<see cref="long"/>) gives Int64; else every one a number gives Double;
/// else every one <c>true</c>/<c>false</c> (any case) gives Boolean; else String. A column with no values is String.
/// The <c>id</c> column is Int64, or String when some value is not an integer (the id check then names those rows).
/// </remarks>
internal static class CsvEsfReader
{
    public static EsfContent? Read(Stream stream, char separator, ErrorList errors)
    {
        using var reader = Sep.New(separator)
            .Reader(o => o with { HasHeader = false, Unescape = true, DisableColCountCheck = true })
            .From(stream);

        string[]? names = null;
        List<string?>[] columns = [];
        var dataRow = 0;
        foreach (var row in reader)
        {
            if (row.ColCount == 1 && row[0].Span.IsWhiteSpace())
                continue;
            if (names is null)
            {
                names = new string[row.ColCount];
                for (var i = 0; i < names.Length; i++)
                    names[i] = row[i].ToString();
                columns = names.Select(_ => new List<string?>()).ToArray();
                continue;
            }
            dataRow++;
            // A ragged row is an error, but it stays (cut or padded with nulls) so that later rows keep their numbers.
            if (row.ColCount != names.Length)
                errors.Add(dataRow, $"has {row.ColCount} field{(row.ColCount == 1 ? "" : "s")}, the header has {names.Length}");
            for (var i = 0; i < names.Length; i++)
            {
                var cell = i < row.ColCount ? row[i].ToString() : "";
                columns[i].Add(cell.Length == 0 ? null : cell);
            }
        }
        if (names is null)
        {
            errors.Add(null, "is empty: an ESF needs a header row with an 'id' column");
            return null;
        }
        if (!EsfColumns.CheckNames(names, errors))
            return null;

        var fields = new List<Field>(names.Length);
        var arrays = new List<IArrowArray>(names.Length);
        for (var i = 0; i < names.Length; i++)
        {
            var array = Infer(columns[i], integerOrString: names[i] == EsfColumns.Id);
            fields.Add(new Field(names[i], array.Data.DataType, nullable: true));
            arrays.Add(array);
        }
        var schema = new Schema(fields, null);
        var length = columns.Length == 0 ? 0 : columns[0].Count;
        return new EsfContent(schema, length == 0 ? [] : [new RecordBatch(schema, arrays, length)]);
    }

    private static IArrowArray Infer(List<string?> values, bool integerOrString)
    {
        var present = values.Where(v => v is not null).Select(v => v!).ToList();
        if (present.Count > 0 && present.All(v => long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _)))
        {
            var builder = new Int64Array.Builder();
            foreach (var v in values)
                if (v is null) builder.AppendNull(); else builder.Append(long.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture));
            return builder.Build();
        }
        if (!integerOrString && present.Count > 0 && present.All(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _)))
        {
            var builder = new DoubleArray.Builder();
            foreach (var v in values)
                if (v is null) builder.AppendNull(); else builder.Append(double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture));
            return builder.Build();
        }
        if (!integerOrString && present.Count > 0 && present.All(v => bool.TryParse(v, out _)))
        {
            var builder = new BooleanArray.Builder();
            foreach (var v in values)
                if (v is null) builder.AppendNull(); else builder.Append(bool.Parse(v));
            return builder.Build();
        }
        var strings = new StringArray.Builder();
        foreach (var v in values)
            if (v is null) strings.AppendNull(); else strings.Append(v);
        return strings.Build();
    }
}
