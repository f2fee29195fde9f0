using Parquet.Schema;
using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class EsfErrorTests
{
    private static DataError Single(IReadOnlyList<DataError> errors) => Assert.Single(errors);

    [Fact]
    public void Csv_esf_with_a_duplicate_id_names_the_file_and_both_rows()
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.CsvErrors(folder, "id,label\n7,1\n8,2\n7,3\n"));
        Assert.Equal(folder["esf.csv"], error.File);
        Assert.Equal(3, error.Row);
        Assert.Equal("duplicate id 7: row 1 has it too", error.Message);
        Assert.Equal($"{folder["esf.csv"]} row 3: duplicate id 7: row 1 has it too", error.ToString());
    }

    [Fact]
    public void Csv_esf_with_a_non_integer_id_names_the_row_and_shows_the_value()
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.CsvErrors(folder, "id,label\n1,1\n2.5,2\n3,3\n"));
        Assert.Equal(2, error.Row);
        Assert.Equal("id '2.5' is not an integer", error.Message);
    }

    [Fact]
    public void Csv_esf_with_an_empty_id_names_the_row()
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.CsvErrors(folder, "id,label\n1,1\n,2\n"));
        Assert.Equal(2, error.Row);
        Assert.Contains("has no id", error.Message);
    }

    [Fact]
    public void An_esf_without_an_id_column_lists_its_columns()
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.CsvErrors(folder, "key,label\n1,1\n"));
        Assert.Null(error.Row);
        Assert.Equal(folder["esf.csv"], error.File);
        Assert.Contains("has no 'id' column", error.Message);
        Assert.Contains("its columns are: key, label", error.Message);
    }

    [Fact]
    public void An_esf_with_an_upper_case_ID_column_is_told_it_must_be_lower_case()
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.CsvErrors(folder, "ID,label\n1,1\n"));
        Assert.Equal("has no 'id' column: column 'ID' must be named 'id' (lower case, no spaces)", error.Message);
    }

    [Fact]
    public void All_errors_of_a_file_are_collected_not_just_the_first()
    {
        using var folder = new TempFolder();
        var errors = SampleEsf.CsvErrors(folder, "id,label\nx,1\n2,2\n2,3\n,4\n5,5,5\n");
        Assert.Equal(
            [(1L, "id 'x' is not an integer"), (3L, "duplicate id 2: row 2 has it too"), (4L, "has no id (the id is empty)"), (5L, "has 3 fields, the header has 2")],
            errors.Select(e => (e.Row!.Value, e.Message)).OrderBy(e => e.Item1));
    }

    [Theory]
    [InlineData("id,label,x\n1,0,0.5\n2,1,0.25,9\n3,0,0.75\n", 2L, "has 4 fields, the header has 3")]
    [InlineData("id,label,x\n1,0,0.5\n2,1,0.25\n3,0\n", 3L, "has 2 fields, the header has 3")]
    public void A_ragged_row_alone_fails_the_file_naming_its_row(string csv, long row, string message)
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.CsvErrors(folder, csv));
        Assert.Equal((folder["esf.csv"], row, message), (error.File, error.Row, error.Message));
        Assert.Equal(error, Single(DataHandle.Builder(folder.Path).Train("esf.csv").Build().Validate()));
    }

    [Fact]
    public void A_file_with_many_errors_lists_twenty_and_counts_the_rest()
    {
        using var folder = new TempFolder();
        var csv = "id,label\n" + string.Concat(Enumerable.Range(0, 50).Select(i => $"bad{i},1\n"));
        var errors = SampleEsf.CsvErrors(folder, csv);
        Assert.Equal(21, errors.Count);
        Assert.Equal(20, errors[19].Row);
        Assert.Null(errors[20].Row);
        Assert.Equal("and 30 more errors in this file", errors[20].Message);
    }

    [Fact]
    public void An_unknown_extension_is_an_error_naming_the_file()
    {
        using var folder = new TempFolder();
        folder.Write("train.xlsx", "whatever");
        var error = Single(SampleEsf.OpenErrors(folder, "train.xlsx"));
        Assert.Equal(folder["train.xlsx"], error.File);
        Assert.Contains("unknown extension '.xlsx'", error.Message);
        Assert.Contains(".csv", error.Message);
    }

    [Fact]
    public void A_missing_esf_is_an_error_naming_the_file()
    {
        using var folder = new TempFolder();
        var error = Single(SampleEsf.OpenErrors(folder, "nope.csv"));
        Assert.Equal(folder["nope.csv"], error.File);
        Assert.Equal("file not found", error.Message);
    }

    [Fact]
    public void An_empty_csv_and_a_header_only_csv_are_errors()
    {
        using var folder = new TempFolder();
        Assert.Contains("is empty", Single(SampleEsf.CsvErrors(folder, "")).Message);
        Assert.Equal("has no data rows", Single(SampleEsf.CsvErrors(folder, "id,label\n")).Message);
    }

    [Fact]
    public void A_header_naming_a_column_twice_is_an_error()
    {
        using var folder = new TempFolder();
        Assert.Equal("the header names column 'label' twice", Single(SampleEsf.CsvErrors(folder, "id,label,label\n1,2,3\n")).Message);
    }

    [Fact]
    public void A_parquet_esf_with_text_ids_names_the_row_of_the_bad_one()
    {
        using var folder = new TempFolder();
        var id = new DataField<string>("id");
        folder.WriteParquet("t.parquet", new ParquetSchema(id), g => g.WriteAsync(id, new[] { "1", "two", "3" }));
        var error = Single(SampleEsf.OpenErrors(folder, "t.parquet"));
        Assert.Equal((2L, "id 'two' is not an integer"), (error.Row!.Value, error.Message));
    }

    [Fact]
    public void A_parquet_esf_with_floating_point_ids_is_refused()
    {
        using var folder = new TempFolder();
        var id = new DataField<double>("id");
        folder.WriteParquet("t.parquet", new ParquetSchema(id), g => g.WriteAsync<double>(id, new[] { 1.0, 2.0 }));
        Assert.Equal("column 'id' has Arrow type double; ids must be integers", Single(SampleEsf.OpenErrors(folder, "t.parquet")).Message);
    }

    [Fact]
    public void A_corrupt_parquet_file_is_an_error_naming_the_file()
    {
        using var folder = new TempFolder();
        folder.Write("t.parquet", "id,label\n1,2\n");
        var error = Single(SampleEsf.OpenErrors(folder, "t.parquet"));
        Assert.Equal(folder["t.parquet"], error.File);
        Assert.StartsWith("cannot be read as Parquet", error.Message);
    }

    [Fact]
    public void Validate_reports_the_errors_of_every_file_without_stopping_at_the_first()
    {
        using var folder = new TempFolder();
        folder.Write("train.csv", "id,label\n1,1\n1,2\n");
        folder.Write("validation.csv", "ID,label\n1,1\n");
        folder.Write("test.csv", "id,label\n1,1\n");
        var handle = DataHandle.Builder(folder.Path).Train("train.csv").Validation("validation.csv").Test("test.csv").Predict("predict.csv").Build();

        var errors = handle.Validate();

        Assert.Equal(
            [(folder["train.csv"], (long?)2), (folder["validation.csv"], null), (folder["predict.csv"], null)],
            errors.Select(e => (e.File, e.Row)));
        Assert.Contains("file not found", errors[2].Message);
        var opened = Assert.Throws<DataException>(() => handle.Open(Mode.Train));
        Assert.Contains($"{folder["train.csv"]} row 2: duplicate id 1", opened.Message);
        Assert.Equal(1, handle.Open(Mode.Test).RowCount);
    }
}
