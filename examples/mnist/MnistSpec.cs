// The MNIST example: one MLSpec, two architectures chosen by the `model_type` knob.
// `rapidfire` compiles this file at run time; it needs no project of its own.
using Microsoft.Data.Analysis;
using RapidFire.Spec;
using RapidFire.Spec.Vision;
using TorchSharp;
using static TorchSharp.torch;

public sealed class MnistSpec : MLSpec
{
    // Mean and standard deviation of MNIST pixels, as torchvision's tutorials normalize them. Kept as Scalars: an
    // implicit float-to-Scalar conversion (x.sub_(0.1307f)) can be finalized while libtorch still reads it.
    private static readonly Scalar Mean = 0.1307f.ToScalar(), Std = 0.3081f.ToScalar(), Eight = 8.ToScalar();

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        var image = Images.Read(row.GetPath("filepath"), channels: 1).sub_(Mean).div_(Std); // [1, 28, 28]
        var example = new Dictionary<string, object> { ["images"] = image };
        if (mode != Mode.Predict)
            example["labels"] = torch.tensor(row.GetInt64("label"));
        return example;
    }

    public override nn.Module CreateModel(Config cfg)
    {
        var hidden = cfg.Get("hidden", 128);
        var dropout = cfg.Get("dropout", 0.0);
        return cfg.Get<string>("model_type") switch
        {
            "mlp" => nn.Sequential(
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(28 * 28, hidden)),
                ("relu", nn.ReLU()),
                ("dropout", nn.Dropout(dropout)),
                ("fc2", nn.Linear(hidden, 10))),
            "cnn" => nn.Sequential(
                ("conv1", nn.Conv2d(1, 16, 3, padding: 1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(16, 32, 3, padding: 1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(32 * 7 * 7, hidden)),
                ("relu3", nn.ReLU()),
                ("dropout", nn.Dropout(dropout)),
                ("fc2", nn.Linear(hidden, 10))),
            var other => throw new ArgumentException($"unknown model_type '{other}': expected mlp or cnn"),
        };
    }

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
    {
        var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["images"]);
        // logits feed the topK_accuracy named metrics, predictions and targets top1_accuracy.
        var outputs = new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1) };
        if (mode == Mode.Predict)
            return outputs;
        var labels = minibatch["labels"];
        outputs["targets"] = labels;
        return (nn.functional.cross_entropy(logits, labels), outputs);
    }

    // A custom algebraic metric: per-class recall of the digit 8 (the hardest digit), from additive parts.
    public override IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
        Minibatch minibatch, Config cfg, Mode mode)
    {
        var targets = (Tensor)outputs["targets"];
        var eights = targets.eq(Eight);
        var hits = eights.logical_and(((Tensor)outputs["predictions"]).eq(Eight));
        return new Dictionary<string, object> { ["eights"] = eights.sum(), ["eights_found"] = hits.sum() };
    }

    public override IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Config cfg, Mode mode)
    {
        var eights = metrics.Columns["eights"].Cast<double?>().Sum() ?? 0;
        var found = metrics.Columns["eights_found"].Cast<double?>().Sum() ?? 0;
        return new Dictionary<string, double> { ["recall_8"] = eights == 0 ? 0 : found / eights };
    }

    // Stop a run once its validation loss rises two epochs in a row.
    public override bool HasConverged(DataFrame valMetrics, int epoch, Config cfg)
    {
        if (epoch < 3) return false;
        var loss = valMetrics.Columns["loss"];
        var n = loss.Length;
        return (double)loss[n - 1]! > (double)loss[n - 2]! && (double)loss[n - 2]! > (double)loss[n - 3]!;
    }
}
