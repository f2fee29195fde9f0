using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class RowTests : IDisposable
{
    private readonly TempFolder folder = new();
    private readonly EsfTable table;

    public RowTests()
    {
        folder.Touch("images/a.png", "images/b.png");
        table = SampleEsf.OpenCsv(folder, """
            id,filepath,label,score,flag,name,big,Label2
            10,images/a.png,3,0.25,true,cat,5000000000,1
            11,images/b.png,,1.5,false,,-1,2
            """);
    }

    public void Dispose() => folder.Dispose();

    private Row First => table[0];
    private Row Second => table[1];

    private DataError Error(Action read) => Assert.Single(Assert.Throws<DataException>(read).Errors);

    [Fact]
    public void Typed_getters_read_their_columns_and_convert_without_loss()
    {
        Assert.Equal(10, First.Id);
        Assert.Equal(3L, First.GetInt64("label"));
        Assert.Equal(3, First.GetInt32("label"));
        Assert.Equal(3.0, First.GetDouble("label"));
        Assert.Equal(3f, First.GetSingle("label"));
        Assert.Equal(0.25, First.GetDouble("score"));
        Assert.Equal(0.25f, First.GetSingle("score"));
        Assert.True(First.GetBoolean("flag"));
        Assert.Equal("cat", First.GetString("name"));
        Assert.Equal(5_000_000_000L, First.GetInt64("big"));
        Assert.Equal(folder["images/a.png"], First.GetPath("filepath"));
        Assert.True(Path.IsPathRooted(First.GetPath("filepath")));
    }

    [Fact]
    public void Columns_are_listed_and_looked_up_by_exact_name()
    {
        Assert.Equal(["id", "filepath", "label", "score", "flag", "name", "big", "Label2"], First.Columns);
        Assert.True(First.Has("label"));
        Assert.False(First.Has("Label"));
        Assert.Equal(["filepath"], First.ObjectColumns);
        Assert.True(First.IsObjectColumn("filepath"));
        Assert.Equal(Mode.Train, First.Mode);
        Assert.Equal(folder["esf.csv"], First.File);
    }

    [Fact]
    public void The_indexer_boxes_values_and_gives_object_columns_as_paths()
    {
        Assert.Equal(10L, First["id"]);
        Assert.Equal(3L, First["label"]);
        Assert.Equal(0.25, First["score"]);
        Assert.Equal(true, First["flag"]);
        Assert.Equal("cat", First["name"]);
        Assert.Equal(folder["images/b.png"], Second["filepath"]);
        Assert.Null(Second["label"]);
        Assert.Null(Second["name"]);
    }

    [Fact]
    public void Get_of_T_reads_like_the_getters_and_nullable_types_take_nulls()
    {
        Assert.Equal(3L, First.Get<long>("label"));
        Assert.Equal(3, First.Get<int>("label"));
        Assert.Equal(0.25f, First.Get<float>("score"));
        Assert.True(First.Get<bool>("flag"));
        Assert.Equal("cat", First.Get<string>("name"));
        Assert.Equal(folder["images/a.png"], First.Get<string>("filepath"));
        Assert.Equal(10L, First.Get<object>("id"));
        Assert.Null(Second.Get<long?>("label"));
        Assert.Equal(3L, First.Get<long?>("label"));
        Assert.Null(Second.Get<object>("name"));
        Assert.Contains("Get<DateTime> is not supported", Error(() => First.Get<DateTime>("name")).Message);
    }

    [Fact]
    public void An_unknown_column_is_an_error_listing_the_columns_and_hinting_at_case()
    {
        var error = Error(() => First.GetInt64("Label"));
        Assert.Equal(folder["esf.csv"], error.File);
        Assert.Equal(1, error.Row);
        Assert.Equal("id 10, column 'Label' does not exist (did you mean 'label'? names are case-sensitive); "
                     + "the columns are: id, filepath, label, score, flag, name, big, Label2", error.Message);
        Assert.Contains("column 'nope' does not exist; the columns are", Error(() => _ = First["nope"]).Message);
        Assert.Throws<DataException>(() => First.IsNull("nope"));
    }

    [Fact]
    public void A_nan_in_an_integer_column_is_the_error_of_its_own_row_and_the_other_rows_read_as_integers()
    {
        using var other = new TempFolder();
        var labels = SampleEsf.OpenCsv(other, "id,label\n1,3\n2,NaN\n3,1.0\n");

        Assert.Equal(3L, labels[0].GetInt64("label"));
        Assert.Equal(1, labels[2].GetInt32("label"));
        var error = Error(() => labels[1].GetInt64("label"));
        Assert.Equal(2, error.Row);
        Assert.StartsWith("id 2, column 'label' holds NaN, which is not an integer (GetInt64)", error.Message);
    }

    [Fact]
    public void A_getter_of_the_wrong_type_names_the_column_its_arrow_type_and_the_getter()
    {
        Assert.Equal("id 10, column 'name' has Arrow type utf8, so GetInt64 cannot read it as an integer; use GetString",
            Error(() => First.GetInt64("name")).Message);
        Assert.Equal("id 10, column 'score' holds 0.25, which is not an integer (GetInt32); the column's values are numbers, not all integers: " +
                     "fix this cell, or read the column with GetDouble or GetSingle", Error(() => First.GetInt32("score")).Message);
        Assert.Equal("id 10, column 'flag' has Arrow type bool, so GetSingle cannot read it as a number; use GetBoolean",
            Error(() => First.GetSingle("flag")).Message);
        Assert.Equal("id 10, column 'label' has Arrow type uint8, so GetString cannot read it as a string; use GetInt64 or GetInt32",
            Error(() => First.GetString("label")).Message);
        Assert.Equal("id 10, column 'filepath' has Arrow type utf8, so GetBoolean cannot read it as a boolean; use GetPath or GetString",
            Error(() => First.GetBoolean("filepath")).Message);
    }

    [Fact]
    public void A_null_where_a_value_is_needed_names_file_row_id_and_column()
    {
        var error = Error(() => Second.GetInt64("label"));
        Assert.Equal((folder["esf.csv"], (long?)2), (error.File, error.Row));
        Assert.StartsWith("id 11, column 'label' is null (an empty cell) where GetInt64 needs a value", error.Message);
        Assert.Contains("GetString needs a value", Error(() => Second.GetString("name")).Message);
        Assert.True(Second.IsNull("label"));
        Assert.False(First.IsNull("label"));
    }

    [Fact]
    public void GetPath_on_a_column_that_is_not_an_object_column_is_an_error()
    {
        Assert.StartsWith("id 10, column 'name' is not an object column, so it has no path (GetPath); its object columns are: filepath",
            Error(() => First.GetPath("name")).Message);
    }

    [Fact]
    public void A_value_too_big_for_an_int_is_an_error_not_a_wrap_around()
    {
        Assert.Equal("id 10, column 'big' holds 5000000000, which does not fit in an int (GetInt32); use GetInt64",
            Error(() => First.GetInt32("big")).Message);
        Assert.Equal(-1, Second.GetInt32("big"));
    }

    [Fact]
    public void A_row_prints_its_file_row_and_values()
    {
        Assert.Equal("esf.csv row 2: id=11, filepath='images/b.png', label=null, score=1.5, flag=false, name=null, big=-1, Label2=2",
            Second.ToString());
    }
}
