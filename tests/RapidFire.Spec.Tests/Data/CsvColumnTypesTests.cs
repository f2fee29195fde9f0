using Apache.Arrow.Types;
using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

/// <summary>CSV columns are stored in the narrowest type that holds their values, and many numeric columns read at once.</summary>
public sealed class CsvColumnTypesTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("rf-csv-types-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private EsfTable Open(string csv)
    {
        File.WriteAllText(Path.Combine(dir, "train.csv"), csv);
        return DataHandle.Builder(dir).Train("train.csv").Build().Open(Mode.Train);
    }

    private const string Csv =
        "id,pixel,delta,wide,huge,score,flag,note,gap\n" +
        "1,0,-5,1000,3000000000,0.25,true,a,\n" +
        "2,255,5,-40000,7,1.5,false,b,\n" +
        "3,17,0,12,-3000000000,-2,True,,\n";

    [Fact]
    public void Integer_columns_take_the_narrowest_type_that_holds_every_value_and_read_as_before()
    {
        var table = Open(Csv);
        IArrowType TypeOf(string column) => table.Schema.GetFieldByName(column).DataType;
        Assert.IsType<Int64Type>(TypeOf("id"));
        Assert.IsType<UInt8Type>(TypeOf("pixel"));
        Assert.IsType<Int8Type>(TypeOf("delta"));
        Assert.IsType<Int32Type>(TypeOf("wide"));
        Assert.IsType<Int64Type>(TypeOf("huge"));
        Assert.IsType<DoubleType>(TypeOf("score"));
        Assert.IsType<BooleanType>(TypeOf("flag"));
        Assert.IsType<StringType>(TypeOf("note"));
        Assert.IsType<StringType>(TypeOf("gap"));

        var row = table[1];
        Assert.Equal(255L, row.GetInt64("pixel"));
        Assert.Equal(255L, row["pixel"]);
        Assert.Equal(-40000, row.GetInt32("wide"));
        Assert.Equal(1.5, row["score"]);
        Assert.False(row.GetBoolean("flag"));
        Assert.True(table[2].IsNull("note"));
        Assert.Equal(-3000000000L, table[2].GetInt64("huge"));
    }

    [Fact]
    public void GetSingles_reads_many_numeric_columns_at_once_by_list_or_by_range()
    {
        var table = Open(Csv);
        var row = table[0];
        string[] columns = ["score", "pixel", "delta", "huge"];
        Assert.Equal([0.25f, 0f, -5f, 3e9f], row.GetSingles(columns));
        Assert.Equal([0f, -5f, 1000f, 3e9f, 0.25f], row.GetSingles("pixel", "score"));
        Span<float> into = stackalloc float[4];
        table[1].GetSingles(columns, into);
        Assert.Equal([1.5f, 255f, 5f, 7f], into.ToArray());
    }

    [Fact]
    public void GetSingles_names_the_column_that_is_not_a_number_the_null_cell_and_a_bad_range()
    {
        var table = Open(Csv);
        var notNumber = Assert.Throws<DataException>(() => table[0].GetSingles(["pixel", "note"]));
        Assert.Contains("id 1, column 'note'", notNumber.Message);
        var missing = Assert.Throws<DataException>(() => table[0].GetSingles(["pixel", "pixels"]));
        Assert.Contains("column 'pixels' does not exist", missing.Message);
        var range = Assert.Throws<DataException>(() => table[0].GetSingles("score", "pixel"));
        Assert.Contains("'pixel' comes before 'score'", range.Message);
    }
}
