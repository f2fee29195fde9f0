// The tabular example: the Wisconsin diagnostic breast cancer data (569 tumours, 30 numeric features) in situ, every
// feature a column of the ESF (id,diagnosis,mean_radius..worst_fractal_dimension), and `diagnosis` a string column (M/B).
// Logistic regression or a small MLP, chosen by the `model_type` knob.
// `rapidfire` compiles this file at run time; it needs no project of its own.
using System.Globalization;
using Microsoft.Data.Analysis;
using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;

public sealed class TabularSpec : MLSpec
{
    private const string FirstFeature = "mean_radius", LastFeature = "worst_fractal_dimension";

    // Per-feature mean and standard deviation over the train split, from the misc locator (make-data.py writes them).
    // Set once in InitializeRun, read-only afterwards.
    private string[] names = [];
    private float[] means = [], scales = [];
    private volatile bool columnsChecked;

    public override void InitializeRun(string miscPath, Config cfg, Mode mode)
    {
        var file = Path.Join(miscPath, "feature_stats.csv");
        if (!File.Exists(file))
            throw new FileNotFoundException($"{file} not found: the data handle's misc locator must hold make-data.py's feature_stats.csv", file);
        var lines = File.ReadAllLines(file).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToArray();
        names = lines.Select(l => l[0]).ToArray();
        means = lines.Select(l => float.Parse(l[1], CultureInfo.InvariantCulture)).ToArray();
        scales = lines.Select(l => 1f / float.Parse(l[2], CultureInfo.InvariantCulture)).ToArray();
    }

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        if (!columnsChecked)
            CheckColumns(row);
        // The fast column path: one call reads the 30 feature columns straight from the ESF's typed (double) arrays.
        var x = row.GetSingles(FirstFeature, LastFeature);
        for (var i = 0; i < x.Length; i++)
            x[i] = (x[i] - means[i]) * scales[i]; // standardized with the train split's statistics
        var example = new Dictionary<string, object> { ["features"] = torch.tensor(x) }; // [30]
        if (mode != Mode.Predict)
            example["labels"] = torch.tensor(row.GetString("diagnosis") switch
            {
                "M" => 1L, // malignant: the positive class
                "B" => 0L,
                var other => throw new InvalidDataException($"{row}: diagnosis '{other}' is neither M nor B"),
            });
        return example;
    }

    // The statistics are matched to the columns by position: check once that the ESF's range has the same names.
    private void CheckColumns(Row row)
    {
        var columns = row.Columns;
        var first = columns.ToList().IndexOf(FirstFeature);
        string[] range = first < 0 ? [] : columns.Skip(first).Take(names.Length).ToArray();
        if (!range.SequenceEqual(names) || range.LastOrDefault() != LastFeature)
            throw new InvalidDataException($"{row.File}: the columns {FirstFeature}..{LastFeature} are not those of feature_stats.csv ({string.Join(", ", names)})");
        columnsChecked = true;
    }

    public override nn.Module CreateModel(Config cfg)
    {
        const int features = 30;
        return cfg.Get<string>("model_type") switch
        {
            "linear" => nn.Sequential(("fc", nn.Linear(features, 2))), // logistic regression (2-class softmax)
            "mlp" => Mlp(features, cfg.Get("hidden", 32), cfg.Get("dropout", 0.1)),
            var other => throw new ArgumentException($"unknown model_type '{other}': expected linear or mlp"),
        };
    }

    private static nn.Module Mlp(int features, int hidden, double dropout) => nn.Sequential(
        ("fc1", nn.Linear(features, hidden)),
        ("relu", nn.ReLU()),
        ("dropout", nn.Dropout(dropout)),
        ("fc2", nn.Linear(hidden, 2)));

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
    {
        var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch["features"]); // [batch, 2]
        var outputs = new Dictionary<string, object> { ["logits"] = logits, ["predictions"] = logits.argmax(1) };
        if (mode == Mode.Predict)
            return outputs;
        var labels = minibatch["labels"];
        outputs["targets"] = labels;
        return (nn.functional.cross_entropy(logits, labels), outputs);
    }

    // Recall (sensitivity) and precision for malignant tumours, from additive counts: labels and predictions are 0/1,
    // so their sums count the malignant and the predicted malignant, and their product's sum the true positives.
    public override IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
        Minibatch minibatch, Config cfg, Mode mode)
    {
        var targets = (Tensor)outputs["targets"];
        var predictions = (Tensor)outputs["predictions"];
        return new Dictionary<string, object>
        {
            ["malignant"] = targets.sum(),
            ["predicted_malignant"] = predictions.sum(),
            ["true_malignant"] = targets.mul(predictions).sum(),
        };
    }

    public override IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Config cfg, Mode mode)
    {
        double Sum(string column) => metrics.Columns[column].Cast<double?>().Sum() ?? 0;
        var (malignant, predicted, hits) = (Sum("malignant"), Sum("predicted_malignant"), Sum("true_malignant"));
        return new Dictionary<string, double>
        {
            ["recall_malignant"] = malignant == 0 ? 0 : hits / malignant,
            ["precision_malignant"] = predicted == 0 ? 0 : hits / predicted,
        };
    }
}
