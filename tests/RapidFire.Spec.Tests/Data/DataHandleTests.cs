using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class DataHandleTests
{
    private const string Full = """
        { "locators": { "train": "train.csv", "validation": "validation.csv", "test": "test.csv",
                        "predict": "predict.csv", "objects": ".", "misc": "misc", "models": "models" },
          "download_columns": null, "fraction": 1.0, "seed": 42 }
        """;

    private static IReadOnlyList<DataError> JsonErrors(string json) =>
        Assert.Throws<DataException>(() => DataHandle.FromJson(json, "/data", "handle.json")).Errors;

    [Fact]
    public void The_json_format_resolves_every_locator_against_the_handles_folder()
    {
        var handle = DataHandle.FromJson(Full, "/data/mnist", "handle.json");
        Assert.Equal(new LocalLocator("/data/mnist/train.csv"), handle.GetLocator(Mode.Train));
        Assert.Equal(new LocalLocator("/data/mnist/predict.csv"), handle.Partitions[Mode.Predict]);
        Assert.Equal(ModeNames.All, handle.Partitions.Keys);
        Assert.Equal(new LocalLocator("/data/mnist"), handle.Objects);
        Assert.Equal(new LocalLocator("/data/mnist/misc"), handle.Misc);
        Assert.Equal(new LocalLocator("/data/mnist/models"), handle.Models);
        Assert.Null(handle.DownloadColumns);
        Assert.Equal((1.0, 42), (handle.Fraction, handle.Seed));
        Assert.Equal("handle.json", handle.Source);
    }

    [Fact]
    public void Only_one_partition_is_needed_and_the_rest_default()
    {
        var handle = DataHandle.FromJson("""{ "locators": { "validation": "v.parquet" } }""", "/data", "h.json");
        Assert.True(handle.HasPartition(Mode.Validation));
        Assert.False(handle.HasPartition(Mode.Train));
        Assert.Equal(new LocalLocator("/data"), handle.Objects);
        Assert.Null(handle.Misc);
        Assert.Equal((1.0, DataHandle.DefaultSeed), (handle.Fraction, handle.Seed));
    }

    [Fact]
    public void Opening_a_partition_the_handle_lacks_names_the_handle_and_the_partition()
    {
        var handle = DataHandle.FromJson("""{ "locators": { "validation": "v.csv" } }""", "/data", "h.json");
        var error = Assert.Single(Assert.Throws<DataException>(() => handle.Open(Mode.Train)).Errors);
        Assert.Equal("h.json", error.File);
        Assert.Equal("data handle h.json has no 'train' locator; it gives: validation", error.Message);
    }

    [Fact]
    public void Unknown_keys_are_errors_with_a_suggestion_and_all_faults_are_listed()
    {
        var errors = JsonErrors("""{ "locators": { "trian": "t.csv", "train": "t.csv" }, "fractoin": 0.5, "seed": "x" }""");
        Assert.Equal([
            "unknown key 'locators.trian' (did you mean 'train'?); the known keys are: train, validation, test, predict, objects, misc, models",
            "unknown key 'fractoin' (did you mean 'fraction'?); the known keys are: locators, download_columns, fraction, seed",
            "seed must be an integer (32-bit), not the string \"x\"",
        ], errors.Select(e => e.Message));
        Assert.All(errors, e => Assert.Equal("handle.json", e.File));
    }

    [Theory]
    [InlineData("0", "fraction must be in (0, 1], got 0")]
    [InlineData("1.5", "fraction must be in (0, 1], got 1.5")]
    [InlineData("-0.1", "fraction must be in (0, 1], got -0.1")]
    [InlineData("\"half\"", "fraction must be a number in (0, 1], not the string \"half\"")]
    public void A_bad_fraction_is_an_error_naming_fraction(string fraction, string message)
    {
        var error = Assert.Single(JsonErrors($$"""{ "locators": { "train": "t.csv" }, "fraction": {{fraction}} }"""));
        Assert.Equal(message, error.Message);
    }

    [Theory]
    [InlineData("""{ "locators": {} }""", "locators: no partition is given; give at least one of train, validation, test, predict")]
    [InlineData("""{ "locators": { "objects": "." } }""", "locators: no partition is given; give at least one of train, validation, test, predict")]
    [InlineData("""{ "fraction": 1 }""", "has no 'locators' object; give at least {\"locators\": {\"train\": \"train.csv\"}}")]
    [InlineData("""{ "locators": { "train": 3 } }""", "locators.train must be a path or an s3:// locator, not the number 3")]
    [InlineData("""{ "locators": { "train": "s3://" } }""", "locators.train: locator 's3://' has no bucket: write s3://bucket/key")]
    [InlineData("""{ "locators": { "train": "t.csv" }, "download_columns": "filepath" }""", "download_columns must be null or a list of column names, not the string \"filepath\"")]
    [InlineData("""{ "locators": { "train": "t.csv" }, "download_columns": ["a", "a"] }""", "download_columns: 'a' is listed twice")]
    [InlineData("""{ "locators": { "train": "t.csv", "train": "u.csv" } }""", "key 'locators.train' is given twice")]
    [InlineData("""[1]""", "a data handle must be a JSON object with a 'locators' object")]
    public void Invalid_handles_are_refused_with_the_setting_at_fault(string json, string message) =>
        Assert.Equal(message, Assert.Single(JsonErrors(json)).Message);

    [Fact]
    public void Malformed_json_names_the_file_and_the_line()
    {
        var error = Assert.Single(JsonErrors("{\n  \"locators\": { \"train\": \"t.csv\" \n}"));
        Assert.Equal("handle.json", error.File);
        Assert.StartsWith("is not valid JSON at line", error.Message);
    }

    [Fact]
    public void Comments_and_trailing_commas_are_allowed()
    {
        var handle = DataHandle.FromJson("""
            // the digits
            { "locators": { "train": "t.csv", }, "seed": 7, }
            """, "/data");
        Assert.Equal(7, handle.Seed);
        Assert.Equal(DataHandle.DefaultSource, handle.Source);
    }

    [Fact]
    public void Load_reads_a_file_relative_to_its_folder_and_a_missing_file_is_named()
    {
        using var folder = new TempFolder();
        var path = folder.Write("sub/handle.json", """{ "locators": { "train": "../train.csv", "objects": "../images" } }""");
        var handle = DataHandle.Load(path);
        Assert.Equal(new LocalLocator(folder["train.csv"]), handle.GetLocator(Mode.Train));
        Assert.Equal(new LocalLocator(folder["images"]), handle.Objects);
        Assert.Equal(path, handle.Source);

        var error = Assert.Single(Assert.Throws<DataException>(() => DataHandle.Load(folder["nope.json"])).Errors);
        Assert.Equal((folder["nope.json"], "data handle file not found"), (error.File, error.Message));
    }

    [Fact]
    public void The_builder_makes_the_same_handle_as_the_json()
    {
        var built = DataHandle.Builder("/data/mnist").Train("train.csv").Validation("validation.csv").Test("test.csv")
            .Predict("predict.csv").Objects(".").Misc("misc").Models("models").Source("handle.json").Build();
        var read = DataHandle.FromJson(Full, "/data/mnist", "handle.json");
        Assert.Equal(read.ToJson("/data/mnist"), built.ToJson("/data/mnist"));
    }

    [Fact]
    public void ToJson_writes_relative_paths_and_reads_back_the_same_handle()
    {
        var handle = DataHandle.Builder("/data/mnist").Train("train.csv").Predict("s3://bucket/esf/predict.csv")
            .Objects("/elsewhere/images").DownloadColumns("filepath").Fraction(0.25).Seed(-3).Build();
        var json = handle.ToJson("/data/mnist");
        Assert.Contains("\"train\": \"train.csv\"", json);
        Assert.Contains("\"objects\": \"/elsewhere/images\"", json);
        var back = DataHandle.FromJson(json, "/data/mnist");
        Assert.Equal(json, back.ToJson("/data/mnist"));
        Assert.Equal(["filepath"], back.DownloadColumns);
        Assert.Equal((0.25, -3), (back.Fraction, back.Seed));
    }

    [Fact]
    public void The_builder_checks_its_settings_like_the_json()
    {
        var errors = Assert.Throws<DataException>(() => DataHandle.Builder("/data").Fraction(2).DownloadColumns("id").Build()).Errors;
        Assert.Equal([
            "locators: no partition is given; give at least one of train, validation, test, predict",
            "fraction must be in (0, 1], got 2",
            "download_columns: 'id' is the id column, not an object column",
        ], errors.Select(e => e.Message));
    }

    [Fact]
    public void A_misc_folder_is_given_as_a_local_path()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder["misc"]);
        var handle = DataHandle.Builder(folder.Path).Train("t.csv").Misc("misc").Build();
        Assert.Equal(folder["misc"], handle.GetMiscPath());
        Assert.Null(DataHandle.Builder(folder.Path).Train("t.csv").Build().GetMiscPath());
    }
}
