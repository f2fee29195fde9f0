using RapidFire.Actors.Checkpoints;
using RapidFire.Spec.Data;

namespace RapidFire.Host.Evaluation;

/// <summary>What <see cref="Experiment.RunTestAsync"/> evaluates, and how.</summary>
/// <param name="Runs">The runs to test; null: every run of the experiment (all its fits) that completed.</param>
/// <param name="Checkpoint">Which checkpoint of each run (<see cref="CheckpointChoice"/>); null: <c>final</c>.</param>
/// <param name="Data">The data handle whose <c>test</c> partition is used; null: each run's fit's own data handle.</param>
/// <param name="Device">Where to compute, as <c>--devices</c> takes it (its first device is used); null: the first device of
/// each run's fit when this machine has it, else the CPU.</param>
public sealed record TestOptions(IReadOnlyList<int>? Runs = null, CheckpointChoice? Checkpoint = null, DataHandle? Data = null,
    string? Device = null);

/// <summary>The format of predictions files.</summary>
public enum PredictFormat
{
    /// <summary><c>predict/run-N.csv</c>.</summary>
    Csv,
    /// <summary><c>predict/run-N.parquet</c>, with typed int64, double and string columns.</summary>
    Parquet,
}

/// <summary>What <see cref="Experiment.RunPredictAsync"/> predicts with, and how.</summary>
/// <param name="Runs">The runs to predict with; null: every run of the experiment (all its fits) that completed.</param>
/// <param name="Checkpoint">Which checkpoint of each run (<see cref="CheckpointChoice"/>); null: <c>final</c>.</param>
/// <param name="Data">The data handle whose <c>predict</c> partition is used; null: each run's fit's own data handle.</param>
/// <param name="Device">Where to compute, as for <see cref="TestOptions.Device"/>.</param>
/// <param name="Format">The files' format (CSV by default).</param>
public sealed record PredictOptions(IReadOnlyList<int>? Runs = null, CheckpointChoice? Checkpoint = null, DataHandle? Data = null,
    string? Device = null, PredictFormat Format = PredictFormat.Csv);

/// <summary>One run's test: the checkpoint used and the test metrics, or why it failed.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Checkpoint">The checkpoint its model was restored from (null when none could be chosen).</param>
/// <param name="Reason">Why that checkpoint: <c>final</c>, <c>end of epoch 2</c>, <c>best loss (min): 0.3 at epoch 2</c>.</param>
/// <param name="Metrics">The test metrics: <c>loss</c>, the named metrics, then <c>AggregateMetrics</c>' keys (empty on failure).</param>
/// <param name="File">Its file, <c>test/run-N.csv</c> (null on failure).</param>
/// <param name="Error">Why the run could not be tested, naming the run (and the checkpoint file or MLSpec method at fault).</param>
public sealed record RunTestResult(int RunId, CheckpointRef? Checkpoint, string? Reason, IReadOnlyDictionary<string, double> Metrics,
    string? File, string? Error)
{
    /// <summary>The 1-based epoch of the checkpoint (the epochs trained, for an epoch-end checkpoint).</summary>
    public int? Epoch => Checkpoint?.Epoch + 1;
}

/// <summary>What <see cref="Experiment.RunTestAsync"/> did: one result per run, in run order.</summary>
/// <param name="Checkpoint">The checkpoint choice, as <c>--checkpoint</c> writes it.</param>
/// <param name="Runs">Each run's result; a run that failed does not stop the others.</param>
/// <param name="Folder">The folder of the files: <c>DIR/NAME/test</c>, with <c>run-N.csv</c> and <c>summary.csv</c>.</param>
/// <param name="Warnings">What was odd but not fatal (also in <c>experiment.log</c>).</param>
public sealed record TestReport(string Checkpoint, IReadOnlyList<RunTestResult> Runs, string Folder, IReadOnlyList<string> Warnings);

/// <summary>One run's predictions: the checkpoint used and the file written, or why it failed.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Checkpoint">The checkpoint its model was restored from (null when none could be chosen).</param>
/// <param name="Reason">Why that checkpoint.</param>
/// <param name="Rows">Rows written: one per predict id.</param>
/// <param name="Columns">The file's columns: <c>id</c>, then the outputs' (<c>predictions</c>, <c>logits_0</c>, ...).</param>
/// <param name="File">The predictions file (null on failure).</param>
/// <param name="Error">Why the run could not predict, naming the run (and the checkpoint file or MLSpec method at fault).</param>
public sealed record RunPredictResult(int RunId, CheckpointRef? Checkpoint, string? Reason, int Rows, IReadOnlyList<string> Columns,
    string? File, string? Error)
{
    /// <summary>The 1-based epoch of the checkpoint.</summary>
    public int? Epoch => Checkpoint?.Epoch + 1;
}

/// <summary>What <see cref="Experiment.RunPredictAsync"/> did: one result per run, in run order.</summary>
/// <param name="Checkpoint">The checkpoint choice, as <c>--checkpoint</c> writes it.</param>
/// <param name="Runs">Each run's result; a run that failed does not stop the others.</param>
/// <param name="Folder">The folder of the files: <c>DIR/NAME/predict</c>.</param>
/// <param name="Warnings">What was odd but not fatal, such as a label column in the predict partition (also in <c>experiment.log</c>).</param>
public sealed record PredictReport(string Checkpoint, IReadOnlyList<RunPredictResult> Runs, string Folder, IReadOnlyList<string> Warnings);
