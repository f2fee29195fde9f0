using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class ObjectColumnTests
{
    [Fact]
    public void A_string_column_whose_first_value_names_an_existing_file_is_detected_as_an_object_column()
    {
        using var folder = new TempFolder();
        folder.Touch("images/a.png", "images/b.png");
        var table = SampleEsf.OpenCsv(folder, "id,filepath,caption,label\n1,images/a.png,a cat,0\n2,images/b.png,images/b.png,1\n");
        Assert.Equal(["filepath"], table.ObjectColumns);
        Assert.Equal(folder["images/b.png"], table[1].GetPath("filepath"));
        Assert.Equal(folder["images/a.png"], table[0]["filepath"]);
        Assert.Equal("images/b.png", table[1]["caption"]);
    }

    [Fact]
    public void Detection_skips_leading_nulls_and_looks_below_the_objects_locator()
    {
        using var folder = new TempFolder();
        folder.Touch("blobs/x/1.bin");
        var table = SampleEsf.OpenCsv(folder, "id,blob\n1,\n2,x/1.bin\n", b => b.Objects("blobs"));
        Assert.Equal(["blob"], table.ObjectColumns);
        Assert.Equal(folder["blobs/x/1.bin"], table[1].GetPath("blob"));
        Assert.Equal(folder["blobs"], table.ObjectsDirectory);
    }

    [Fact]
    public void Explicit_download_columns_replace_detection()
    {
        using var folder = new TempFolder();
        folder.Touch("images/a.png");
        var table = SampleEsf.OpenCsv(folder, "id,filepath,mask\n1,images/a.png,masks/a.png\n", b => b.DownloadColumns("mask"));
        Assert.Equal(["mask"], table.ObjectColumns);
        Assert.Equal(folder["masks/a.png"], table[0].GetPath("mask"));
        Assert.False(table.IsObjectColumn("filepath"));

        var none = SampleEsf.OpenCsv(folder, "id,filepath\n1,images/a.png\n", b => b.DownloadColumns());
        Assert.Empty(none.ObjectColumns);
    }

    [Fact]
    public void A_download_column_that_is_not_in_the_esf_is_an_error_listing_the_columns()
    {
        using var folder = new TempFolder();
        var error = Assert.Single(SampleEsf.CsvErrors(folder, "id,filepath\n1,a.png\n", b => b.DownloadColumns("file_path")));
        Assert.Null(error.Row);
        Assert.Equal("download_columns names 'file_path', which is not a column of this file; its columns are: id, filepath", error.Message);
    }

    [Fact]
    public void A_download_column_holding_numbers_is_an_error()
    {
        using var folder = new TempFolder();
        var error = Assert.Single(SampleEsf.CsvErrors(folder, "id,label\n1,3\n", b => b.DownloadColumns("label")));
        Assert.Equal("download_columns names 'label', but that column holds uint8 values, not object paths", error.Message);
    }

    [Fact]
    public void The_predict_esf_may_lack_a_download_column_when_other_partitions_have_it()
    {
        using var folder = new TempFolder();
        folder.Write("train.csv", "id,image,mask\n1,i/1.png,m/1.png\n");
        folder.Write("predict.csv", "id,image\n2,i/2.png\n");
        var handle = DataHandle.Builder(folder.Path).Train("train.csv").Predict("predict.csv").DownloadColumns("image", "mask").Build();
        Assert.Empty(handle.Validate());
        Assert.Equal(["image"], handle.Open(Mode.Predict).ObjectColumns);
    }

    [Theory]
    [InlineData("../outside.png", "escapes the objects locator")]
    [InlineData("images/../../outside.png", "escapes the objects locator")]
    [InlineData("/etc/passwd", "is an absolute path")]
    [InlineData("C:\\data\\a.png", "is an absolute path")]
    [InlineData("s3://bucket/a.png", "is a URL")]
    public void An_object_path_that_escapes_the_objects_locator_is_refused_naming_file_row_and_column(string path, string gist)
    {
        using var folder = new TempFolder();
        folder.Touch("data/images/a.png");
        folder.Write("data/esf.csv", $"id,filepath\n1,images/a.png\n2,{path}\n");
        var handle = DataHandle.Builder(folder["data"]).Train("esf.csv").DownloadColumns("filepath").Build();

        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train)).Errors);

        Assert.Equal(folder["data/esf.csv"], error.File);
        Assert.Equal(2, error.Row);
        Assert.StartsWith($"id 2, column 'filepath': path '{path}' {gist}", error.Message);
        Assert.Equal([error], handle.Validate());
    }

    [Fact]
    public void A_detected_column_whose_first_path_escapes_to_an_existing_file_is_still_refused()
    {
        using var folder = new TempFolder();
        folder.Touch("secret.png");
        folder.Write("data/esf.csv", "id,filepath\n1,../secret.png\n");
        var handle = DataHandle.Builder(folder["data"]).Train("esf.csv").Build();
        var error = Assert.Single(handle.Validate());
        Assert.Equal((1L, "id 1, column 'filepath': path '../secret.png' escapes the objects locator ('..' leads outside it)"),
            (error.Row!.Value, error.Message));
    }

    [Fact]
    public void Paths_with_backslashes_and_harmless_dot_segments_resolve_below_the_objects_locator()
    {
        using var folder = new TempFolder();
        folder.Touch("images/a.png");
        var table = SampleEsf.OpenCsv(folder, "id,filepath\n1,images\\a.png\n2,./images/../images/a.png\n");
        Assert.Equal([folder["images/a.png"], folder["images/a.png"]], table.Select(r => r.GetPath("filepath")));
    }

    [Fact]
    public void Validate_can_check_that_every_object_file_exists()
    {
        using var folder = new TempFolder();
        folder.Touch("images/a.png");
        folder.Write("train.csv", "id,filepath\n1,images/a.png\n2,images/missing.png\n");
        var handle = DataHandle.Builder(folder.Path).Train("train.csv").Build();

        Assert.Empty(handle.Validate());
        var error = Assert.Single(handle.Validate(checkObjectFiles: true));
        Assert.Equal(2, error.Row);
        Assert.Equal($"id 2, column 'filepath': object file 'images/missing.png' not found under {folder.Path}", error.Message);
    }

    [Fact]
    public void ObjectPath_normalizes_relative_paths_and_explains_refusals()
    {
        Assert.True(ObjectPath.TryNormalize("a//b/./c.png", out var normalized, out _));
        Assert.Equal("a/b/c.png", normalized);
        Assert.False(ObjectPath.TryNormalize("a/..", out _, out var problem));
        Assert.Contains("objects locator itself", problem);
        Assert.False(ObjectPath.TryNormalize(" ", out _, out problem));
        Assert.Contains("empty", problem);
    }
}
