using RapidFire.Actors.Devices;
using RapidFire.Spec;

namespace RapidFire.Actors.Tests;

public class DeviceSpecTests
{
    [Fact]
    public void Cpu_forms_give_one_or_N_workers()
    {
        Assert.Equal(["cpu"], DeviceSpec.Parse("cpu", () => 0).Select(d => d.Id));
        Assert.Equal(["cpu-0", "cpu-1", "cpu-2"], DeviceSpec.Parse("cpu:3", () => 0).Select(d => d.Id));
        Assert.All(DeviceSpec.Parse("cpu:3", () => 0), d => Assert.Equal("cpu", d.TorchDevice));
    }

    [Fact]
    public void Cuda_forms_give_all_or_the_listed_devices()
    {
        Assert.Equal(["cuda:0", "cuda:1"], DeviceSpec.Parse("cuda", () => 2).Select(d => d.Id));
        Assert.Equal(["cuda:1"], DeviceSpec.Parse("cuda:1", () => 2).Select(d => d.TorchDevice));
    }

    [Theory]
    [InlineData("gpu", "expected cpu")]
    [InlineData("cpu:0", "N >= 1")]
    [InlineData("cuda", "no CUDA device is available")]
    public void Bad_device_settings_are_named(string text, string gist)
    {
        var e = Assert.Throws<ConfigException>(() => DeviceSpec.Parse(text, () => 0));
        Assert.StartsWith($"devices: '{text}'", e.Message);
        Assert.Contains(gist, e.Message);
    }

    [Fact]
    public void A_missing_cuda_index_names_the_devices_there_are()
    {
        var e = Assert.Throws<ConfigException>(() => DeviceSpec.Parse("cuda:0,3", () => 2));
        Assert.Contains("cuda:3 does not exist; this machine has 2 CUDA devices (0..1)", e.Message);
    }
}
