using Apache.Arrow.Types;
using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class EsfFormatTests
{
    public static TheoryData<string> Formats => new(SampleEsf.Formats);

    [Theory]
    [MemberData(nameof(Formats))]
    public void Every_format_reads_the_same_rows_values_and_object_paths(string format)
    {
        using var folder = new TempFolder();
        var table = SampleEsf.Open(folder, SampleEsf.Write(folder, format));

        Assert.Equal(Mode.Train, table.Mode);
        Assert.Equal(3, table.RowCount);
        Assert.Equal([1L, 2L, 3L], table.Ids);
        Assert.Equal(["id", "filepath", "label", "score", "flag", "note"], table.Columns);
        Assert.Equal(["filepath"], table.ObjectColumns);

        var rows = table.ToList();
        Assert.Equal([1L, 2L, 3L], rows.Select(r => r.Id));
        Assert.Equal([3L, 7L, 0L], rows.Select(r => r.GetInt64("label")));
        Assert.Equal(0.5, rows[0].GetDouble("score"));
        Assert.True(rows[1].IsNull("score"));
        Assert.Equal(2.25, rows[2].GetDouble("score"));
        Assert.Equal([true, false, true], rows.Select(r => r.GetBoolean("flag")));
        Assert.Equal("hello, world", rows[0].GetString("note"));
        Assert.True(rows[1].IsNull("note"));
        Assert.Null(rows[1]["note"]);
        Assert.Equal(folder["images/c.png"], rows[2].GetPath("filepath"));
        Assert.Equal("images/c.png", rows[2].GetString("filepath"));
        Assert.Equal([1L, 2L, 3L], rows.Select(r => r.FileRow));
    }

    [Fact]
    public void Csv_types_are_inferred_from_every_value_of_a_column()
    {
        using var folder = new TempFolder();
        var table = SampleEsf.OpenCsv(folder, """
            id,count,ratio,ok,word,mixed,empty,big
            1,10,1,True,a,1,,9223372036854775807
            2,-3,2.5,false,b,x,,1
            3,,1e3,,c,2.5,,2
            """);

        string TypeOf(string column) => table.Schema.GetFieldByName(column).DataType.Name;
        Assert.IsType<Int64Type>(table.Schema.GetFieldByName("id").DataType);
        Assert.Equal("int8", TypeOf("count")); // the narrowest integer type that holds 10 and -3
        Assert.Equal("double", TypeOf("ratio"));
        Assert.Equal("bool", TypeOf("ok"));
        Assert.Equal("utf8", TypeOf("word"));
        Assert.Equal("utf8", TypeOf("mixed"));
        Assert.Equal("utf8", TypeOf("empty"));
        Assert.Equal("int64", TypeOf("big"));
        Assert.True(table[2].IsNull("count"));
        Assert.True(table[2].IsNull("ok"));
        Assert.Equal(1000.0, table[2].GetDouble("ratio"));
        Assert.Equal("1", table[0].GetString("mixed"));
        Assert.Equal(long.MaxValue, table[0].GetInt64("big"));
        Assert.Empty(table.ObjectColumns);
    }

    [Fact]
    public void Csv_quotes_blank_lines_and_a_final_newline_are_handled()
    {
        using var folder = new TempFolder();
        var table = SampleEsf.OpenCsv(folder, "id,text\r\n1,\"a \"\"quoted\"\" word\"\r\n\r\n2,\"two\nlines\"\r\n");
        Assert.Equal([1L, 2L], table.Ids);
        Assert.Equal("a \"quoted\" word", table[0].GetString("text"));
        Assert.Equal("two\nlines", table[1].GetString("text"));
    }

    [Fact]
    public void A_csv_saved_with_a_byte_order_mark_still_has_its_id_column()
    {
        using var folder = new TempFolder();
        var table = SampleEsf.OpenCsv(folder, "\uFEFFid,label\n1,2\n");
        Assert.Equal(["id", "label"], table.Columns);
    }

    [Fact]
    public void Parquet_integer_and_float_widths_are_kept_and_read_by_the_getters()
    {
        using var folder = new TempFolder();
        var id = new Parquet.Schema.DataField<int>("id");
        var small = new Parquet.Schema.DataField<short>("small");
        var single = new Parquet.Schema.DataField<float>("single");
        var price = new Parquet.Schema.DataField<decimal>("price");
        var when = new Parquet.Schema.DataField<DateTime>("when");
        folder.WriteParquet("t.parquet", new Parquet.Schema.ParquetSchema(id, small, single, price, when), async g =>
        {
            await g.WriteAsync<int>(id, new[] { 5, 6 });
            await g.WriteAsync<short>(small, new short[] { -2, 300 });
            await g.WriteAsync<float>(single, new[] { 1.5f, 2f });
            await g.WriteAsync<decimal>(price, new[] { 1.25m, 3m });
            await g.WriteAsync<DateTime>(when, new[] { new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc), DateTime.UnixEpoch });
        });

        var table = SampleEsf.Open(folder, "t.parquet");

        Assert.Equal([5L, 6L], table.Ids);
        Assert.Equal("int32", table.Schema.GetFieldByName("id").DataType.Name);
        Assert.Equal("int16", table.Schema.GetFieldByName("small").DataType.Name);
        Assert.Equal("float", table.Schema.GetFieldByName("single").DataType.Name);
        Assert.Equal(300, table[1].GetInt32("small"));
        Assert.Equal(1.5f, table[0].GetSingle("single"));
        Assert.Equal(1.5f, table[0]["single"]);
        Assert.Equal(1.25, table[0].GetDouble("price"));
        Assert.StartsWith("2024-01-02T03:04:05", table[0].GetString("when"));
    }

    [Fact]
    public void Arrow_dictionary_encoded_strings_read_as_strings()
    {
        using var folder = new TempFolder();
        var ids = new Apache.Arrow.Int64Array.Builder().Append(1).Append(2).Append(3).Build();
        var indices = new Apache.Arrow.Int32Array.Builder().Append(1).Append(0).AppendNull().Build();
        var dictionary = new Apache.Arrow.StringArray.Builder().Append("cat").Append("dog").Build();
        var type = new DictionaryType(Int32Type.Default, StringType.Default, false);
        var kinds = new Apache.Arrow.DictionaryArray(type, indices, dictionary);
        var schema = new Apache.Arrow.Schema.Builder()
            .Field(f => f.Name("id").DataType(Int64Type.Default))
            .Field(f => f.Name("kind").DataType(type))
            .Build();
        folder.WriteArrow("d.arrow", fileFormat: true, new Apache.Arrow.RecordBatch(schema, [ids, kinds], 3));

        var table = SampleEsf.Open(folder, "d.arrow");

        Assert.Equal("dog", table[0].GetString("kind"));
        Assert.Equal("cat", table[1]["kind"]);
        Assert.True(table[2].IsNull("kind"));
    }
}
