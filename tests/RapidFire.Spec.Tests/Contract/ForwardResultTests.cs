using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Contract;

public class ForwardResultTests
{
    [Fact]
    public void The_seed_shapes_convert_implicitly()
    {
        ForwardResult train = (torch.ones(1, requires_grad: true), new Dictionary<string, object> { ["logits"] = torch.ones(2) });
        ForwardResult predict = new Dictionary<string, object> { ["logits"] = torch.ones(2) };
        Assert.NotNull(train.Checked(Mode.Train).Loss);
        Assert.Null(predict.Checked(Mode.Predict).Loss);
        Assert.Null(predict.Checked(Mode.Validation).Loss);
    }

    [Fact]
    public void Train_mode_without_a_loss_names_ComputeForward()
    {
        ForwardResult result = new Dictionary<string, object> { ["logits"] = torch.ones(2) };
        var e = Assert.Throws<SpecException>(() => result.Checked(Mode.Train));
        Assert.Equal("MLSpec.ComputeForward: must return (loss, outputs) in train mode, but returned no loss", e.Message);
    }

    [Fact]
    public void A_loss_with_several_values_is_refused()
    {
        ForwardResult result = (torch.ones(3, requires_grad: true), new Dictionary<string, object>());
        Assert.Contains("shape [3]", Assert.Throws<SpecException>(() => result.Checked(Mode.Validation)).Message);
    }

    [Fact]
    public void A_predict_mode_loss_is_dropped()
    {
        ForwardResult result = (torch.ones(1), new Dictionary<string, object>());
        Assert.Null(result.Checked(Mode.Predict).Loss);
    }
}
