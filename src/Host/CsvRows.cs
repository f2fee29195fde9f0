using nietras.SeparatedValues;

namespace RapidFire.Host;

/// <summary>The CSV tables the experiment writes (runs.csv, metric files, ic-log.csv) read back as rows of cells by column name.</summary>
public static class CsvRows
{
    /// <summary>The file's column names, in order, and its rows (each cell by column name, unescaped).</summary>
    public static (IReadOnlyList<string> Columns, List<Dictionary<string, string>> Rows) Read(string path)
    {
        using var reader = Sep.Reader(o => o with { Unescape = true }).FromFile(path);
        var columns = reader.Header.ColNames.ToList();
        var rows = new List<Dictionary<string, string>>();
        foreach (var row in reader)
        {
            var cells = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var column in columns) cells[column] = row[column].ToString();
            rows.Add(cells);
        }
        return (columns, rows);
    }
}
