using RapidFire.Spec.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests;

public class TorchNativeTests
{
    [Fact]
    public void A_small_model_trains_and_its_loss_falls()
    {
        TorchNative.EnsureLoaded();
        torch.manual_seed(7);
        var x = torch.randn(64, 10);
        var y = (x.sum(1, keepdim: true) > 0).to(ScalarType.Float32);
        var model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1));
        var opt = torch.optim.Adam(model.parameters(), lr: 0.05);
        var losses = new List<float>();
        for (var step = 0; step < 30; step++)
        {
            opt.zero_grad();
            var loss = nn.functional.binary_cross_entropy_with_logits(model.forward(x), y);
            loss.backward();
            opt.step();
            losses.Add(loss.item<float>());
        }
        Assert.True(losses[^1] < losses[0] * 0.5, $"loss went {losses[0]} -> {losses[^1]}");
    }
}

public class ElfVersionPatcherTests
{
    private static byte[] ShippedLibrary() =>
        File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"));

    [Fact]
    public void The_shipped_library_requires_GLIBCXX_3_4_32_strictly_and_the_patch_makes_only_that_weak()
    {
        var image = ShippedLibrary();
        Assert.False(ElfVersionPatcher.IsWeak(image, "GLIBCXX_3.4.32"));
        var original = (byte[])image.Clone();

        Assert.True(ElfVersionPatcher.MarkVersionWeak(image, "GLIBCXX_3.4.32"));

        Assert.True(ElfVersionPatcher.IsWeak(image, "GLIBCXX_3.4.32"));
        Assert.False(ElfVersionPatcher.IsWeak(image, "GLIBCXX_3.4.30"));
        var changed = Enumerable.Range(0, image.Length).Count(i => image[i] != original[i]);
        Assert.Equal(1, changed); // one flags byte, nothing else
    }

    [Fact]
    public void A_version_that_is_not_required_is_not_found()
    {
        Assert.False(ElfVersionPatcher.MarkVersionWeak(ShippedLibrary(), "GLIBCXX_9.9.99"));
    }

    [Fact]
    public void A_file_that_is_not_ELF64_is_refused()
    {
        Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.MarkVersionWeak(new byte[128], "x"));
    }
}
