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
