// The transfer learning example: an MLP learns the ten digits (the source task, experiment 1); a second experiment
// starts from its weights, or from the same network trained and saved by PyTorch (models/digits-mlp.pt), and learns
// a new task, even or odd, from 250 digits, with a new head and the first layer frozen or not.
// `rapidfire` compiles this file at run time; it needs no project of its own.
using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;

public sealed class TransferSpec : MLSpec
{
    // Kept as Scalars: an implicit conversion can be finalized while libtorch still reads it.
    private static readonly Scalar Scale = (1f / 255f).ToScalar(), Two = 2.ToScalar();

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        var example = new Dictionary<string, object> { ["pixels"] = torch.tensor(row.GetSingles("p0", "p783")).mul_(Scale) };
        if (mode != Mode.Predict)
        {
            var digit = torch.tensor(row.GetInt64("label"));
            example["labels"] = Task(cfg) == "parity" ? digit.remainder(Two) : digit;
        }
        return example;
    }

    /// <summary>
    /// fc1 (784-hidden) + ReLU + a head for the task: fc2 (10 digits) or parity (even, odd). The knob <c>base</c> names
    /// a checkpoint in the data handle's models locator to start fc1 from (or <c>none</c>); <c>freeze</c> = <c>fc1</c>
    /// keeps those weights as they are and trains the head only.
    /// </summary>
    public override nn.Module CreateModel(Config cfg)
    {
        var hidden = cfg.Get("hidden", 128);
        var head = Task(cfg) == "parity" ? ("parity", nn.Linear(hidden, 2)) : ("fc2", nn.Linear(hidden, 10));
        var model = nn.Sequential(("fc1", nn.Linear(28 * 28, hidden)), ("relu", nn.ReLU()), head);

        var baseTag = cfg.Get("base", "none");
        if (baseTag != "none")
        {
            // A RapidFire checkpoint (.ckpt) or PyTorch's torch.save (.pt): the extension picks the reader. Only the
            // body is taken; the base's own head (fc2) belongs to the source task.
            var weights = LoadModel(baseTag);
            var body = weights.Where(w => w.Key.StartsWith("fc1.")).ToDictionary();
            if (body.Count != 2)
                throw new ArgumentException($"base '{baseTag}' has no fc1.weight and fc1.bias (it has {string.Join(", ", weights.Keys)})");
            model.load_state_dict(body, strict: false);
        }

        switch (cfg.Get("freeze", "none"))
        {
            case "none": break;
            case "fc1":
                foreach (var (name, p) in model.named_parameters())
                    if (name.StartsWith("fc1.")) p.requires_grad = false;
                break;
            case var other: throw new ArgumentException($"unknown freeze '{other}': expected none or fc1");
        }
        return model;
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

    private static string Task(Config cfg) => cfg.Get("task", "digits") switch
    {
        var task when task is "digits" or "parity" => task,
        var other => throw new ArgumentException($"unknown task '{other}': expected digits or parity"),
    };
}
