using Apache.Arrow;
using RapidFire.Spec.Data.Formats;

namespace RapidFire.Spec.Data;

/// <summary>The objects locator of a data handle as a check sees it: where it is and how to ask for files.</summary>
/// <param name="Locator">The <c>objects</c> locator.</param>
/// <param name="Storage">The storage that answers whether a file exists.</param>
/// <param name="LocalDirectory">The local folder object paths resolve in; <see langword="null"/> when it is not available
/// (its error is reported once, for the locator).</param>
internal sealed record ObjectsRoot(Locator Locator, IDataStorage Storage, string? LocalDirectory)
{
    public bool Exists(string normalizedPath)
    {
        try
        {
            return Storage.FileExists(Locator.Combine(normalizedPath));
        }
        catch (DataException)
        {
            return false;
        }
    }

    /// <summary>Whether a value that is not an acceptable object path still names a file (so was meant as one).</summary>
    public bool RawPathExists(string value) =>
        LocalDirectory is not null && !value.Contains("://", StringComparison.Ordinal)
                                   && File.Exists(Path.GetFullPath(value.Replace('\\', '/'), LocalDirectory));
}

/// <summary>
/// The checks every ESF passes before a partition opens: the <c>id</c> column (lower case, integer, no nulls, unique),
/// the object columns (explicit or detected) and their paths. All errors of the file are collected.
/// </summary>
internal static class EsfCheck
{
    /// <summary>The ids and object columns of a file that passed; <see langword="null"/> when it did not.</summary>
    public sealed record Result(long[] Ids, IReadOnlyList<string> ObjectColumns);

    public static Result? Run(EsfContent content, ErrorList errors, IReadOnlyList<string>? downloadColumns,
        bool downloadColumnsMayBeAbsent, ObjectsRoot objects, bool checkObjectFiles)
    {
        var before = errors.Count;
        var columns = content.Schema.FieldsList.Select(f => f.Name).ToList();
        var ids = CheckIds(content, columns, errors);
        var objectColumns = downloadColumns is null
            ? DetectObjectColumns(content, columns, objects)
            : ExplicitObjectColumns(content, columns, downloadColumns, downloadColumnsMayBeAbsent, errors);
        CheckObjectPaths(content, columns, objectColumns, ids, objects, checkObjectFiles, errors);
        if (content.RowCount == 0)
            errors.Add(null, "has no data rows");
        if (errors.Count > before || ids is null || ids.Any(id => id is null))
            return null;
        return new Result(ids.Select(id => id!.Value).ToArray(), objectColumns);
    }

    private static long?[]? CheckIds(EsfContent content, List<string> columns, ErrorList errors)
    {
        var index = columns.IndexOf(EsfColumns.Id);
        if (index < 0)
        {
            var other = columns.FirstOrDefault(c => string.Equals(c.Trim(), EsfColumns.Id, StringComparison.OrdinalIgnoreCase));
            errors.Add(null, other is not null
                ? $"has no 'id' column: column '{other}' must be named 'id' (lower case, no spaces)"
                : $"has no 'id' column (lower case, integer, unique); its columns are: {string.Join(", ", columns)}");
            return null;
        }
        var type = content.Schema.GetFieldByIndex(index).DataType;
        var kind = ArrowValues.KindOf(type);
        if (kind is not (ValueKind.Integer or ValueKind.String))
        {
            errors.Add(null, $"column 'id' has Arrow type {ArrowValues.TypeName(type)}; ids must be integers");
            return null;
        }

        var ids = new long?[content.RowCount];
        var firstRow = new Dictionary<long, long>();
        var row = 0L;
        foreach (var batch in content.Batches)
        {
            var array = batch.Column(index);
            for (var i = 0; i < batch.Length; i++)
            {
                row++;
                long id;
                if (ArrowValues.IsNull(array, i))
                {
                    errors.Add(row, "has no id (the id is empty)");
                    continue;
                }
                if (kind == ValueKind.Integer)
                {
                    if (!ArrowValues.TryGetInt64(array, i, out id))
                    {
                        errors.Add(row, $"id {ArrowValues.Show(array, i)} is beyond the range of a 64-bit integer");
                        continue;
                    }
                }
                else if (!long.TryParse(ArrowValues.GetString(array, i), System.Globalization.NumberStyles.AllowLeadingSign,
                             System.Globalization.CultureInfo.InvariantCulture, out id))
                {
                    errors.Add(row, $"id {ArrowValues.Show(array, i)} is not an integer");
                    continue;
                }
                if (firstRow.TryGetValue(id, out var first))
                {
                    errors.Add(row, $"duplicate id {id}: row {first} has it too");
                    continue;
                }
                firstRow[id] = row;
                ids[row - 1] = id;
            }
        }
        return ids;
    }

    /// <summary>
    /// A string column is an object column when its first non-null value names an existing file below the objects
    /// locator. A value that escapes the locator but names an existing file also makes an object column, so that
    /// the path check reports it instead of the column passing silently as text.
    /// </summary>
    private static List<string> DetectObjectColumns(EsfContent content, List<string> columns, ObjectsRoot objects)
    {
        var found = new List<string>();
        for (var c = 0; c < columns.Count; c++)
        {
            if (columns[c] == EsfColumns.Id || ArrowValues.KindOf(content.Schema.GetFieldByIndex(c).DataType) != ValueKind.String)
                continue;
            var first = FirstValue(content, c);
            if (first is null)
                continue;
            var isObject = ObjectPath.TryNormalize(first, out var normalized, out _)
                ? objects.Exists(normalized)
                : objects.RawPathExists(first);
            if (isObject)
                found.Add(columns[c]);
        }
        return found;
    }

    private static string? FirstValue(EsfContent content, int column)
    {
        foreach (var batch in content.Batches)
        {
            var array = batch.Column(column);
            for (var i = 0; i < batch.Length; i++)
                if (ArrowValues.GetString(array, i) is { } value)
                    return value;
        }
        return null;
    }

    private static List<string> ExplicitObjectColumns(EsfContent content, List<string> columns,
        IReadOnlyList<string> downloadColumns, bool mayBeAbsent, ErrorList errors)
    {
        var found = new List<string>();
        foreach (var name in downloadColumns)
        {
            var index = columns.IndexOf(name);
            if (index < 0)
            {
                if (!mayBeAbsent)
                    errors.Add(null, $"download_columns names '{name}', which is not a column of this file; its columns are: {string.Join(", ", columns)}");
                continue;
            }
            var type = content.Schema.GetFieldByIndex(index).DataType;
            if (name == EsfColumns.Id || ArrowValues.KindOf(type) != ValueKind.String)
                errors.Add(null, $"download_columns names '{name}', but that column holds {ArrowValues.TypeName(type)} values, not object paths");
            else
                found.Add(name);
        }
        return found;
    }

    private static void CheckObjectPaths(EsfContent content, List<string> columns, IReadOnlyList<string> objectColumns,
        long?[]? ids, ObjectsRoot objects, bool checkFiles, ErrorList errors)
    {
        foreach (var name in objectColumns)
        {
            var index = columns.IndexOf(name);
            var row = 0L;
            foreach (var batch in content.Batches)
            {
                var array = batch.Column(index);
                for (var i = 0; i < batch.Length; i++)
                {
                    row++;
                    var value = ArrowValues.GetString(array, i);
                    if (value is null)
                        continue;
                    var who = ids?[row - 1] is { } id ? $"id {id}, column '{name}'" : $"column '{name}'";
                    if (!ObjectPath.TryNormalize(value, out var normalized, out var problem))
                        errors.Add(row, $"{who}: path '{value}' {problem}");
                    else if (checkFiles && !objects.Exists(normalized))
                        errors.Add(row, $"{who}: object file '{value}' not found under {objects.Locator}");
                }
            }
        }
    }
}
