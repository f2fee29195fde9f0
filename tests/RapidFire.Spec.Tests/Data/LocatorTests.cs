using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class LocatorTests
{
    [Fact]
    public void A_relative_path_resolves_against_the_base_folder_and_an_absolute_one_stays()
    {
        Assert.Equal(new LocalLocator("/data/mnist/train.csv"), Locator.Parse("train.csv", "/data/mnist"));
        Assert.Equal(new LocalLocator("/data/train.csv"), Locator.Parse("../train.csv", "/data/mnist"));
        Assert.Equal(new LocalLocator("/other/t.csv"), Locator.Parse("/other/t.csv", "/data/mnist"));
        Assert.Equal("train.csv", Locator.Parse("train.csv", "/data").FileName);
    }

    [Fact]
    public void An_s3_locator_parses_into_bucket_and_key()
    {
        var locator = Assert.IsType<S3Locator>(Locator.Parse("s3://my-bucket/esf/train.parquet", "/data"));
        Assert.Equal(("my-bucket", "esf/train.parquet"), (locator.Bucket, locator.Key));
        Assert.Equal("train.parquet", locator.FileName);
        Assert.Equal("s3://my-bucket/esf/train.parquet", locator.ToString());
        Assert.Equal(new S3Locator("my-bucket", "images/a.png"), new S3Locator("my-bucket", "images/").Combine("a.png"));
        Assert.Equal(new S3Locator("b", ""), Locator.Parse("s3://b", "/data"));
    }

    [Fact]
    public void Opening_an_s3_partition_with_the_local_storage_says_it_needs_an_s3_storage_and_names_the_locator()
    {
        using var folder = new TempFolder();
        var handle = DataHandle.FromJson("""{ "locators": { "train": "s3://bucket/train.csv" } }""", folder.Path);
        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train)).Errors);
        Assert.Equal("s3://bucket/train.csv", error.File);
        Assert.Contains("S3 locators need an S3 storage", error.Message);
        Assert.Equal([error], handle.Validate());
    }

    [Fact]
    public void An_s3_objects_locator_is_refused_by_the_local_storage_the_same_way()
    {
        using var folder = new TempFolder();
        folder.Write("train.csv", "id,label\n1,2\n");
        var handle = DataHandle.Builder(folder.Path).Train("train.csv").Objects("s3://bucket/images").Build();
        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train)).Errors);
        Assert.Equal("s3://bucket/images", error.File);
        Assert.Equal("objects locator: S3 locators need an S3 storage: pass an S3DataStorage to DataHandle.Open (experiments and the rapidfire CLI use one)", error.Message);
    }

    [Fact]
    public void Local_storage_refuses_a_folder_where_a_file_is_needed()
    {
        using var folder = new TempFolder();
        var error = Assert.Throws<DataException>(() => LocalDataStorage.Instance.OpenRead(new LocalLocator(folder.Path)));
        Assert.Contains("is a folder, not a file", error.Message);
    }
}
