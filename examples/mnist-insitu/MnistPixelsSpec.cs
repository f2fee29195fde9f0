// The in-situ MNIST example: every pixel is a column of the ESF (id,label,p0..p783), so RowPrep reads numbers, not files.
// `rapidfire` compiles this file at run time; it needs no project of its own.
using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;

public sealed class MnistPixelsSpec : MLSpec
{
    // Kept as a Scalar: an implicit float-to-Scalar conversion can be finalized while libtorch still reads it.
    private static readonly Scalar Scale = (1f / 255f).ToScalar();

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        // One call reads the 784 pixel columns straight from the ESF's typed arrays (stored as bytes).
        var pixels = torch.tensor(row.GetSingles("p0", "p783")).mul_(Scale); // [784]
        var example = new Dictionary<string, object> { ["pixels"] = pixels };
        if (mode != Mode.Predict)
            example["labels"] = torch.tensor(row.GetInt64("label"));
        return example;
    }

    public override nn.Module CreateModel(Config cfg)
    {
        var hidden = cfg.Get("hidden", 256);
        return nn.Sequential(("fc1", nn.Linear(28 * 28, hidden)), ("relu", nn.ReLU()), ("fc2", nn.Linear(hidden, 10)));
    }

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
    {
        var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["pixels"]);
        var outputs = new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1) };
        if (mode == Mode.Predict)
            return outputs;
        var labels = minibatch["labels"];
        outputs["targets"] = labels;
        return (nn.functional.cross_entropy(logits, labels), outputs);
    }
}
