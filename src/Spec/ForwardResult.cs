using static TorchSharp.torch;

namespace RapidFire.Spec;

/// <summary>
/// What <see cref="MLSpec.ComputeForward"/> returns: the loss and the outputs in train, validation and test;
/// only the outputs in predict.
/// </summary>
/// <remarks>
/// C# lets a spec return the seed's shapes directly: <c>return (loss, new Dictionary&lt;string, object&gt; { ... });</c>
/// for train/validation/test and <c>return new Dictionary&lt;string, object&gt; { ... };</c> for predict. Every
/// output must be batch-size long in its outermost dimension. The reserved keys <c>predictions</c>,
/// <c>logits</c> and <c>targets</c> feed the named metrics.
/// </remarks>
public sealed class ForwardResult
{
    /// <summary>Creates a result; <paramref name="loss"/> may be null outside training.</summary>
    public ForwardResult(Tensor? loss, IReadOnlyDictionary<string, object> outputs)
    {
        Loss = loss;
        Outputs = outputs ?? throw new SpecException("ComputeForward", "returned null outputs");
    }

    /// <summary>The loss: a one-element tensor (shape (1,) or a scalar); absent in predict mode.</summary>
    public Tensor? Loss { get; }

    /// <summary>The outputs by user-chosen key.</summary>
    public IReadOnlyDictionary<string, object> Outputs { get; }

    /// <summary>The seed's 2-tuple: loss and outputs.</summary>
    public static implicit operator ForwardResult((Tensor Loss, Dictionary<string, object> Outputs) result) =>
        new(result.Loss, result.Outputs);

    /// <summary>Outputs only, as predict mode returns (and validation/test may).</summary>
    public static implicit operator ForwardResult(Dictionary<string, object> outputs) => new(null, outputs);

    /// <summary>
    /// Checks the result against the contract of <paramref name="mode"/>: training needs a one-element loss; in
    /// predict mode a loss is ignored. A breach is a <see cref="SpecException"/> of <c>ComputeForward</c>.
    /// </summary>
    public ForwardResult Checked(Mode mode)
    {
        if (Loss is null)
        {
            if (mode == Mode.Train)
                throw new SpecException("ComputeForward", "must return (loss, outputs) in train mode, but returned no loss");
            return this;
        }
        if (mode == Mode.Predict) return new ForwardResult(null, Outputs);
        if (Loss.numel() != 1)
            throw new SpecException("ComputeForward",
                $"the loss must hold one value (shape (1,) or a scalar), got shape [{string.Join(", ", Loss.shape)}]");
        if (mode == Mode.Train && !Loss.requires_grad)
            throw new SpecException("ComputeForward",
                "the train-mode loss does not require grad: it must be computed from the model's outputs");
        return this;
    }
}
