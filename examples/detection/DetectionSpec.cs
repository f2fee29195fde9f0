// The detection example: 1 to 3 MNIST digits on a 64x64 canvas, found and classified by a mini-YOLO.
// `rapidfire` compiles this file at run time; it needs no project of its own.
//
// - RowPrep returns the image and a variable number of targets: boxes [k, 4] (x0 y0 x1 y1, pixels) and labels [k].
// - CollateFn stacks the images and keeps the targets as lists of per-image tensors (the default collate cannot
//   stack [k, 4] tensors of different k).
// - The model is a grid of 8x8 cells; each cell predicts an objectness, 10 class logits and a box. A digit belongs to
//   the cell holding its box's centre.
// - ComputeMetrics returns, besides two additive counts, one object per minibatch: every image's detections and ground
//   truth. AggregateMetrics matches all the epoch's detections at once to compute the VOC-style mAP@0.5, the COCO-style
//   mAP@[0.5:0.95] and a mean IoU: metrics that are no sum of per-minibatch parts.
using System.Collections;
using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Analysis;
using RapidFire.Spec;
using RapidFire.Spec.Vision;
using TorchSharp;
using static TorchSharp.torch;

public sealed class DetectionSpec : MLSpec
{
    private const int Size = 64, Cell = 8, Grid = Size / Cell, Classes = 10;
    private const int Outputs = 1 + Classes + 4; // objectness, class logits, box (centre in the cell, size)
    private const float Span = 32f; // box sizes are predicted as a fraction of this many pixels
    private const float MinScore = 0.01f, NmsIou = 0.5f, MeanIouScore = 0.5f;
    private const int MaxDetections = 10;

    // Kept as a Scalar: an implicit float-to-Scalar conversion can be finalized while libtorch still reads it.
    private static readonly Scalar BoxWeight = 5f.ToScalar();

    public override object RowPrep(Row row, Config cfg, Mode mode)
    {
        var image = Images.Read(row.GetPath("filepath"), channels: 1); // [1, 64, 64], values in [0, 1]
        if (image.shape[1] != Size || image.shape[2] != Size)
            throw new SpecException("RowPrep",
                $"image {row.GetString("filepath")} is {image.shape[2]}x{image.shape[1]}, expected {Size}x{Size}");
        var example = new Dictionary<string, object> { ["images"] = image };
        if (mode == Mode.Predict)
            return example;
        var (labels, boxes) = ParseBoxes(row.IsNull("boxes") ? "" : row.GetString("boxes"));
        example["boxes"] = torch.tensor(boxes, [labels.Length, 4]);
        example["labels"] = torch.tensor(labels);
        return example;
    }

    /// <summary>
    /// "label x0 y0 x1 y1;..." (x1, y1 exclusive) into labels and a flat [k * 4] array of boxes. A fault names the digit
    /// and what is wrong with it; the runtime adds the row id to every RowPrep error.
    /// </summary>
    private static (long[] Labels, float[] Boxes) ParseBoxes(string text)
    {
        var digits = text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var labels = new long[digits.Length];
        var boxes = new float[digits.Length * 4];
        for (var d = 0; d < digits.Length; d++)
        {
            var fields = digits[d].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string Fault(string problem) => $"boxes '{text}': digit {d + 1} ('{digits[d]}') {problem}";
            if (fields.Length != 5)
                throw new SpecException("RowPrep", Fault($"has {fields.Length} numbers, expected 5: label x0 y0 x1 y1"));
            var values = new int[5];
            for (var f = 0; f < 5; f++)
                if (!int.TryParse(fields[f], NumberStyles.Integer, CultureInfo.InvariantCulture, out values[f]))
                    throw new SpecException("RowPrep", Fault($"has '{fields[f]}', which is not a whole number"));
            var (label, x0, y0, x1, y1) = (values[0], values[1], values[2], values[3], values[4]);
            if (label is < 0 or >= Classes)
                throw new SpecException("RowPrep", Fault($"has label {label}, expected 0 to {Classes - 1}"));
            if (x0 < 0 || y0 < 0 || x1 > Size || y1 > Size || x0 >= x1 || y0 >= y1)
                throw new SpecException("RowPrep", Fault($"is no box inside the {Size}x{Size} image (0 <= x0 < x1 <= {Size}, same for y)"));
            labels[d] = label;
            (boxes[4 * d], boxes[4 * d + 1], boxes[4 * d + 2], boxes[4 * d + 3]) = (x0, y0, x1, y1);
        }
        return (labels, boxes);
    }

    // The images are stacked; the targets stay lists of per-image tensors ([k, 4] boxes, [k] labels), k varying.
    public override object CollateFn(IReadOnlyList<object> batch, Config cfg, Mode mode)
    {
        var examples = batch.Select((b, i) => b as IReadOnlyDictionary<string, object>
            ?? throw new SpecException("CollateFn", $"example {i} of the minibatch is a {b.GetType().Name}, not RowPrep's dictionary")).ToList();
        var collated = new Dictionary<string, object> { ["images"] = torch.stack(examples.Select(e => (Tensor)e["images"]), 0) };
        if (mode != Mode.Predict)
        {
            collated["boxes"] = examples.Select(e => (Tensor)e["boxes"]).ToList();
            collated["labels"] = examples.Select(e => (Tensor)e["labels"]).ToList();
        }
        return collated;
    }

    public override nn.Module CreateModel(Config cfg)
    {
        var c = cfg.Get("channels", 16);
        if (c < 1) throw new SpecException("CreateModel", $"knob 'channels' must be a whole number >= 1, got {c}");
        return nn.Sequential(
            ("conv1", nn.Conv2d(1, c, 3, padding: 1)), ("bn1", nn.BatchNorm2d(c)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(c, 2 * c, 3, padding: 1)), ("bn2", nn.BatchNorm2d(2 * c)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
            ("conv3", nn.Conv2d(2 * c, 4 * c, 3, padding: 1)), ("bn3", nn.BatchNorm2d(4 * c)), ("relu3", nn.ReLU()), ("pool3", nn.MaxPool2d(2)),
            ("conv4", nn.Conv2d(4 * c, 4 * c, 3, padding: 1)), ("bn4", nn.BatchNorm2d(4 * c)), ("relu4", nn.ReLU()),
            ("head", nn.Conv2d(4 * c, Outputs, 1))); // [B, 15, 8, 8]
    }

    public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
    {
        var images = minibatch["images"];
        var batch = images.shape[0];
        // [B, 8, 8, 15]: per cell, the objectness logit, 10 class logits and 4 box logits.
        var raw = ((nn.Module<Tensor, Tensor>)model).forward(images).permute(0, 2, 3, 1).contiguous();
        if (mode == Mode.Predict)
        {
            // One string per row, in the boxes column's format with a score: "label score x0 y0 x1 y1;...".
            var grids = Floats(raw);
            var detections = Enumerable.Range(0, (int)batch).Select(b => string.Join(";", Decode(grids, b).Select(d =>
                string.Create(CultureInfo.InvariantCulture, $"{d.Label} {d.Score:0.###} {d.X0:0.#} {d.Y0:0.#} {d.X1:0.#} {d.Y1:0.#}")))).ToList();
            return new Dictionary<string, object> { ["detections"] = detections };
        }
        var outputs = new Dictionary<string, object> { ["grid"] = raw };
        var targets = Targets(minibatch, batch);
        var device = images.device;
        var flat = raw.reshape(-1, Outputs); // [B * 64, 15]
        var objectness = torch.tensor(targets.Objectness).to(device);
        var objLoss = nn.functional.binary_cross_entropy_with_logits(flat.select(1, 0), objectness, reduction: nn.Reduction.Sum);
        var loss = objLoss;
        if (targets.Cells.Length > 0)
        {
            var positive = flat.index_select(0, torch.tensor(targets.Cells).to(device)); // [P, 15]
            var clsLoss = nn.functional.cross_entropy(positive.narrow(1, 1, Classes), torch.tensor(targets.Labels).to(device),
                reduction: nn.Reduction.Sum);
            var boxLoss = nn.functional.l1_loss(positive.narrow(1, 1 + Classes, 4).sigmoid(),
                torch.tensor(targets.Boxes, [targets.Cells.Length, 4]).to(device), reduction: nn.Reduction.Sum);
            loss = objLoss.add(clsLoss).add(boxLoss.mul(BoxWeight));
        }
        using var perImage = ((double)batch).ToScalar();
        return (loss.div(perImage), outputs);
    }

    /// <summary>
    /// What the cells should predict: the flat [B * 64] objectness targets, and per digit its cell (flat index), label and
    /// box (centre offset in the cell, size / 32). make-data.py gives every digit a cell of its own.
    /// </summary>
    private sealed record GridTargets(float[] Objectness, long[] Cells, long[] Labels, float[] Boxes);

    private static GridTargets Targets(Minibatch minibatch, long batch)
    {
        var boxes = TargetList(minibatch, "boxes", batch);
        var labels = TargetList(minibatch, "labels", batch);
        var objectness = new float[batch * Grid * Grid];
        var cells = new List<long>();
        var classes = new List<long>();
        var offsets = new List<float>();
        for (var b = 0; b < batch; b++)
        {
            var (truthLabels, truthBoxes) = (Longs(labels[b]), Floats(boxes[b]));
            for (var k = 0; k < truthLabels.Length; k++)
            {
                var (cx, cy) = ((truthBoxes[4 * k] + truthBoxes[4 * k + 2]) / 2, (truthBoxes[4 * k + 1] + truthBoxes[4 * k + 3]) / 2);
                var (i, j) = (Math.Clamp((int)(cy / Cell), 0, Grid - 1), Math.Clamp((int)(cx / Cell), 0, Grid - 1));
                var cell = (long)b * Grid * Grid + i * Grid + j;
                objectness[cell] = 1;
                cells.Add(cell);
                classes.Add(truthLabels[k]);
                offsets.AddRange([cx / Cell - j, cy / Cell - i,
                    (truthBoxes[4 * k + 2] - truthBoxes[4 * k]) / Span, (truthBoxes[4 * k + 3] - truthBoxes[4 * k + 1]) / Span]);
            }
        }
        return new GridTargets(objectness, [.. cells], [.. classes], [.. offsets]);
    }

    /// <summary>A target list of the minibatch: per image one tensor (a list of tensors, on the device after a copy).</summary>
    private static IReadOnlyList<Tensor> TargetList(Minibatch minibatch, string key, long batch)
    {
        var list = minibatch.Get<IList>(key);
        if (list.Count != batch)
            throw new SpecException("ComputeForward", $"minibatch[\"{key}\"] holds {list.Count} items for {batch} images");
        return list.Cast<object>().Select((t, i) => t as Tensor
            ?? throw new SpecException("ComputeForward", $"minibatch[\"{key}\"][{i}] is a {t?.GetType().Name ?? "null"}, not a tensor")).ToList();
    }

    private static float[] Floats(Tensor t) => t.detach().cpu().to_type(ScalarType.Float32).contiguous().data<float>().ToArray();

    private static long[] Longs(Tensor t) => t.detach().cpu().to_type(ScalarType.Int64).contiguous().data<long>().ToArray();

    /// <summary>One box: a detection (with its score) or a ground-truth digit (score 1), in pixels.</summary>
    public sealed record Box(int Label, float Score, float X0, float Y0, float X1, float Y1)
    {
        public float Area() => Math.Max(0, X1 - X0) * Math.Max(0, Y1 - Y0);

        public float Iou(Box other)
        {
            var w = Math.Min(X1, other.X1) - Math.Max(X0, other.X0);
            var h = Math.Min(Y1, other.Y1) - Math.Max(Y0, other.Y0);
            if (w <= 0 || h <= 0) return 0;
            var overlap = w * h;
            return overlap / (Area() + other.Area() - overlap);
        }
    }

    /// <summary>One image's detections and ground truth.</summary>
    public sealed record ImageResult(Box[] Detections, Box[] Truth);

    /// <summary>The non-tensor metric of one minibatch (or of one device's shard of it): its images' results.</summary>
    public sealed record MinibatchResults(ImageResult[] Images);

    /// <summary>
    /// Image <paramref name="b"/>'s detections from the flat [B, 8, 8, 15] grid: each cell scores objectness times its best
    /// class probability; cells under <see cref="MinScore"/> are dropped, then per-class non-maximum suppression keeps the
    /// best <see cref="MaxDetections"/>. Boxes are clipped to the image.
    /// </summary>
    private static List<Box> Decode(float[] grid, int b)
    {
        var candidates = new List<Box>();
        for (var i = 0; i < Grid; i++)
            for (var j = 0; j < Grid; j++)
            {
                var at = ((b * Grid + i) * Grid + j) * Outputs;
                var best = 0;
                for (var c = 1; c < Classes; c++)
                    if (grid[at + 1 + c] > grid[at + 1 + best]) best = c;
                double sum = 0;
                for (var c = 0; c < Classes; c++) sum += Math.Exp(grid[at + 1 + c] - grid[at + 1 + best]);
                var score = (float)(Sigmoid(grid[at]) / sum); // objectness x softmax probability of the best class
                if (score < MinScore) continue;
                var cx = (j + Sigmoid(grid[at + 11])) * Cell;
                var cy = (i + Sigmoid(grid[at + 12])) * Cell;
                var (w, h) = (Sigmoid(grid[at + 13]) * Span, Sigmoid(grid[at + 14]) * Span);
                candidates.Add(new Box(best, score, Math.Max(cx - w / 2, 0), Math.Max(cy - h / 2, 0),
                    Math.Min(cx + w / 2, Size), Math.Min(cy + h / 2, Size)));
            }
        var kept = new List<Box>();
        foreach (var box in candidates.OrderByDescending(d => d.Score))
        {
            if (kept.Count == MaxDetections) break;
            if (kept.All(k => k.Label != box.Label || k.Iou(box) < NmsIou)) kept.Add(box);
        }
        return kept;
    }

    private static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    // Two additive counts (class accuracy at the digits' own cells) and, outside training, the detections: the train pass
    // skips them, since every minibatch's metric values are journaled with its chunk.
    public override IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
        Minibatch minibatch, Config cfg, Mode mode)
    {
        var grid = Floats((Tensor)outputs["grid"]);
        var batch = minibatch.Size;
        var targets = Targets(minibatch, batch);
        var correct = 0L;
        for (var p = 0; p < targets.Cells.Length; p++)
        {
            var at = (int)targets.Cells[p] * Outputs;
            var best = 0;
            for (var c = 1; c < Classes; c++)
                if (grid[at + 1 + c] > grid[at + 1 + best]) best = c;
            if (best == targets.Labels[p]) correct++;
        }
        var metrics = new Dictionary<string, object>
        {
            ["digits"] = torch.tensor((long)targets.Cells.Length),
            ["digits_correct"] = torch.tensor(correct),
        };
        if (mode == Mode.Train)
            return metrics;
        var boxes = TargetList(minibatch, "boxes", batch);
        var labels = TargetList(minibatch, "labels", batch);
        var images = new ImageResult[batch];
        for (var b = 0; b < batch; b++)
        {
            var (truthLabels, truthBoxes) = (Longs(labels[b]), Floats(boxes[b]));
            var truth = truthLabels.Select((label, k) =>
                new Box((int)label, 1, truthBoxes[4 * k], truthBoxes[4 * k + 1], truthBoxes[4 * k + 2], truthBoxes[4 * k + 3])).ToArray();
            images[b] = new ImageResult([.. Decode(grid, b)], truth);
        }
        metrics["detections"] = new MinibatchResults(images);
        return metrics;
    }

    public override IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Config cfg, Mode mode)
    {
        var digits = metrics.Columns["digits"].Cast<double?>().Sum() ?? 0;
        var correct = metrics.Columns["digits_correct"].Cast<double?>().Sum() ?? 0;
        var result = new Dictionary<string, double> { ["class_accuracy"] = digits == 0 ? 0 : correct / digits };
        if (metrics.Columns.IndexOf("detections") < 0)
            return result;
        // Each row (a minibatch) holds the list of what its parts returned: one part per device it was sharded over.
        var images = new List<ImageResult>();
        foreach (var parts in metrics.Columns["detections"].Cast<object?>())
            foreach (var part in parts as IEnumerable ?? Array.Empty<object>())
                images.AddRange(ReadResults(part).Images);
        result["map50"] = MeanAveragePrecision(images, 0.5f);
        result["map50_95"] = Enumerable.Range(0, 10).Average(t => MeanAveragePrecision(images, 0.5f + 0.05f * t));
        result["mean_iou"] = MeanIou(images);
        return result;
    }

    /// <summary>A part's value: the object itself, or its JSON where it travelled (a cluster's worker) or was journaled.</summary>
    private static MinibatchResults ReadResults(object? part) => part switch
    {
        MinibatchResults results => results,
        JsonElement json => json.Deserialize<MinibatchResults>()
            ?? throw new SpecException("AggregateMetrics", "a 'detections' value is null JSON"),
        _ => throw new SpecException("AggregateMetrics",
            $"a 'detections' value is a {part?.GetType().Name ?? "null"}, not the MinibatchResults ComputeMetrics returns"),
    };

    /// <summary>
    /// VOC-style mean average precision at an IoU threshold, over every image of the partition at once: per class, all
    /// detections sorted by score, each matched to the unmatched ground truth of its image it overlaps most (a true positive
    /// when the IoU reaches the threshold); the AP is the area under the precision-recall curve with precision made
    /// monotone (all points, as VOC 2010 and later). Classes without ground truth are left out of the mean.
    /// </summary>
    private static double MeanAveragePrecision(IReadOnlyList<ImageResult> images, float threshold)
    {
        var aps = new List<double>();
        for (var c = 0; c < Classes; c++)
        {
            var truths = images.Select(im => im.Truth.Where(t => t.Label == c).ToArray()).ToArray();
            var positives = truths.Sum(t => t.Length);
            if (positives == 0) continue;
            var matched = truths.Select(t => new bool[t.Length]).ToArray();
            var detections = images.SelectMany((im, n) => im.Detections.Where(d => d.Label == c).Select(d => (Image: n, Box: d)))
                .OrderByDescending(d => d.Box.Score).ToList();
            var precision = new double[detections.Count];
            var recall = new double[detections.Count];
            var hits = 0;
            for (var r = 0; r < detections.Count; r++)
            {
                var (n, box) = detections[r];
                var (best, bestIou) = (-1, threshold);
                for (var k = 0; k < truths[n].Length; k++)
                {
                    var iou = box.Iou(truths[n][k]);
                    if (!matched[n][k] && iou >= bestIou) (best, bestIou) = (k, iou);
                }
                if (best >= 0)
                {
                    matched[n][best] = true;
                    hits++;
                }
                precision[r] = (double)hits / (r + 1);
                recall[r] = (double)hits / positives;
            }
            // The envelope: at each rank, the best precision at this recall or beyond.
            for (var r = detections.Count - 2; r >= 0; r--) precision[r] = Math.Max(precision[r], precision[r + 1]);
            double ap = 0, previousRecall = 0;
            for (var r = 0; r < detections.Count; r++)
            {
                ap += (recall[r] - previousRecall) * precision[r];
                previousRecall = recall[r];
            }
            aps.Add(ap);
        }
        return aps.Count == 0 ? 0 : aps.Average();
    }

    /// <summary>Per ground-truth digit, the best IoU of a detection scoring at least 0.5 (0 if none), averaged over all digits.</summary>
    private static double MeanIou(IReadOnlyList<ImageResult> images)
    {
        var ious = images.SelectMany(im => im.Truth.Select(t =>
            im.Detections.Where(d => d.Score >= MeanIouScore).Select(d => (double)d.Iou(t)).DefaultIfEmpty(0).Max())).ToList();
        return ious.Count == 0 ? 0 : ious.Average();
    }
}
