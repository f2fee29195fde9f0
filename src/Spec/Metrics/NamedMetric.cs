using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Metrics;

/// <summary>
/// A metric RapidFire computes for the user from reserved output keys of <c>ComputeForward</c>:
/// <c>top1_accuracy</c> from <c>predictions</c> and <c>targets</c>; <c>topK_accuracy</c> (K &gt; 1) from
/// <c>logits</c> and <c>targets</c>.
/// </summary>
public sealed partial record NamedMetric
{
    /// <summary>Output key holding the predicted class per example (top-1 accuracy).</summary>
    public const string PredictionsKey = "predictions";
    /// <summary>Output key holding the class scores per example (top-K accuracy).</summary>
    public const string LogitsKey = "logits";
    /// <summary>Output key holding the true class per example.</summary>
    public const string TargetsKey = "targets";

    private NamedMetric(string name, int k) => (Name, K) = (name, k);

    /// <summary>The canonical name, such as <c>top5_accuracy</c>.</summary>
    public string Name { get; }

    /// <summary>How many of the highest-scoring classes may contain the target.</summary>
    public int K { get; }

    /// <summary>The output keys <c>ComputeForward</c> must return for this metric.</summary>
    public IReadOnlyList<string> RequiredOutputs => K == 1 ? [PredictionsKey, TargetsKey] : [LogitsKey, TargetsKey];

    /// <summary>The names RapidFire knows, as a sentence for error messages.</summary>
    public const string KnownNames = "top1_accuracy, or topK_accuracy for a whole number K >= 1 (e.g. top3_accuracy)";

    /// <summary>Parses <c>topK_accuracy</c> (a hyphen is accepted for the underscore, as the seed writes it).</summary>
    public static bool TryParse(string name, out NamedMetric metric)
    {
        var match = Pattern().Match(name);
        if (match.Success && int.TryParse(match.Groups[1].Value, out var k) && k >= 1)
        {
            metric = new NamedMetric($"top{k}_accuracy", k);
            return true;
        }
        metric = null!;
        return false;
    }

    /// <summary>Parses a metric name; an unknown name is a <see cref="ConfigException"/> at <c>named_metrics</c>.</summary>
    public static NamedMetric Parse(string name) => TryParse(name, out var metric)
        ? metric
        : throw new ConfigException(Config.NamedMetricsKey, $"unknown named metric '{name}': expected {KnownNames}");

    /// <summary>
    /// Counts the examples of one minibatch whose target is among the top K. A missing or non-tensor output
    /// key is a <see cref="SpecException"/> of <c>ComputeForward</c> that names this metric and the key.
    /// </summary>
    public (long Correct, long Count) Count(IReadOnlyDictionary<string, object?> outputs)
    {
        using var scope = NewDisposeScope();
        var targets = Output(outputs, TargetsKey).flatten();
        Tensor hits;
        if (K == 1)
        {
            var predictions = Output(outputs, PredictionsKey).flatten();
            CheckLength(predictions, targets, PredictionsKey);
            hits = predictions.eq(targets.to(predictions.dtype));
        }
        else
        {
            var logits = Output(outputs, LogitsKey);
            if (logits.dim() != 2)
                throw Fault($"output '{LogitsKey}' must have shape [batch, classes], got [{string.Join(", ", logits.shape)}]");
            if (logits.shape[1] < K)
                throw Fault($"output '{LogitsKey}' has {logits.shape[1]} classes, fewer than K = {K}");
            CheckLength(logits, targets, LogitsKey);
            var top = logits.topk(K, dim: 1).indexes;
            hits = top.eq(targets.to(ScalarType.Int64).unsqueeze(1)).any(1);
        }
        return (hits.sum().item<long>(), targets.shape[0]);
    }

    private Tensor Output(IReadOnlyDictionary<string, object?> outputs, string key) =>
        !outputs.TryGetValue(key, out var value)
            ? throw Fault($"needs the output key '{key}', which ComputeForward did not return (it returned: {string.Join(", ", outputs.Keys)})")
            : value as Tensor ?? throw Fault($"output '{key}' must be a tensor, got {value?.GetType().Name ?? "null"}");

    private void CheckLength(Tensor output, Tensor targets, string key)
    {
        if (output.shape[0] != targets.shape[0])
            throw Fault($"output '{key}' has {output.shape[0]} rows but '{TargetsKey}' has {targets.shape[0]}");
    }

    private SpecException Fault(string message) => new("ComputeForward", $"named metric {Name} {message}");

    [GeneratedRegex(@"^top(\d+)[_-]accuracy$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();
}
