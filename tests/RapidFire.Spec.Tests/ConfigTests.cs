namespace RapidFire.Spec.Tests;

public class ConfigTests
{
    [Fact]
    public void Config_json_round_trip_keeps_whole_numbers_whole_and_reals_real()
    {
        var config = Config.FromJson("""{"a": 1, "b": 1.0, "c": 2e3, "d": [3, 4.5]}""");

        Assert.IsType<long>(config["a"]);
        Assert.IsType<double>(config["b"]);
        Assert.IsType<double>(config["c"]);
        Assert.Equal([3L, 4.5], (IReadOnlyList<object?>)config["d"]!);
        Assert.Equal(config, Config.FromJson(config.ToJson()));
        Assert.Equal("""{"a":1,"b":1.0,"c":2000.0,"d":[3,4.5]}""", config.ToJson());
    }
}
