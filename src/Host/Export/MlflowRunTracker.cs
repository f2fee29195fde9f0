using System.Globalization;
using System.Text;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Host.Export;

/// <summary>
/// How far a run's export has got: the last minibatch step and epochs whose metrics were handed on, the
/// minibatches of an epoch (once known), and the MLflow status last set. Kept in <c>mlflow.json</c> so a resumed fit
/// goes on from there instead of logging again.
/// </summary>
/// <param name="TrainSteps">Train minibatches exported (the last step logged).</param>
/// <param name="TrainEpochs">Epochs whose train metrics were exported.</param>
/// <param name="ValidationEpochs">Epochs whose validation metrics were exported.</param>
/// <param name="MinibatchesPerEpoch">Train minibatches in an epoch, once an epoch's last chunk was seen.</param>
/// <param name="Status">The MLflow status last set (<c>RUNNING</c> when created).</param>
public sealed record MlflowRunProgress(long TrainSteps = 0, int TrainEpochs = 0, int ValidationEpochs = 0, int? MinibatchesPerEpoch = null,
    string Status = "RUNNING");

/// <summary>What to send to MLflow about a run after a new state of it: metrics, tags, and a status change.</summary>
/// <param name="Metrics">New metric values.</param>
/// <param name="Tags">Tags to set (a status change names the RapidFire status, end reason and error).</param>
/// <param name="Status">The new MLflow status, when it changed.</param>
/// <param name="EndTime">With a final status: when the run ended, in Unix milliseconds.</param>
/// <param name="Progress">Where the export stands once this is sent.</param>
public sealed record MlflowRunUpdate(IReadOnlyList<MlflowMetric> Metrics, IReadOnlyList<KeyValuePair<string, string>> Tags, string? Status,
    long? EndTime, MlflowRunProgress Progress)
{
    /// <summary>Whether there is nothing to send.</summary>
    public bool IsEmpty => Metrics.Count == 0 && Tags.Count == 0 && Status is null;
}

/// <summary>
/// Turns the successive states of one run, and the chunks it trained, into what MLflow has not been told yet: a pure
/// class, no I/O. Each <see cref="Observe(RunState, long)"/> and <see cref="Observe(ChunkRecorded, long)"/> compares
/// what it is given with what was exported (<see cref="Progress"/>), so a state seen twice,
/// or a run that went back to a checkpoint and trains again what it had trained, logs nothing twice. The TensorBoard
/// export (<see cref="TensorBoardExporter"/>) takes its scalars from it too: the same names and steps in both.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Train minibatches: every number of <see cref="Actors.Metrics.MinibatchRecord.Numbers"/> as
/// <c>minibatch_&lt;name&gt;</c> (<c>minibatch_loss</c>, <c>minibatch_top1_accuracy</c>), step = the run's train
/// minibatch count (1-based, over all epochs: epoch × minibatches per epoch + the minibatch's index + 1). Validation
/// minibatches are not logged (their epoch aggregates are).</item>
/// <item>Closed epochs: <c>train_&lt;name&gt;</c> and <c>val_&lt;name&gt;</c> with step = the 1-based epoch.</item>
/// <item>Status: New and Ongoing are <c>RUNNING</c>, Completed <c>FINISHED</c>, Failed <c>FAILED</c>, Stopped and
/// Deleted <c>KILLED</c>; a stopped run that is resumed is <c>RUNNING</c> again.</item>
/// </list>
/// A run seen first in a later epoch (a resume without <c>mlflow.json</c>, a warm clone) holds its minibatches back
/// until the epoch's last chunk tells how many minibatches an epoch has.
/// </remarks>
public sealed class MlflowRunTracker(int runId, MlflowRunProgress? progress = null)
{
    /// <summary>The RapidFire run.</summary>
    public int RunId { get; } = runId;

    /// <summary>What has been handed on so far.</summary>
    public MlflowRunProgress Progress { get; private set; } = progress ?? new MlflowRunProgress();

    /// <summary>The MLflow status of a RapidFire run status.</summary>
    public static string StatusOf(RunStatus status) => status switch
    {
        RunStatus.Completed => "FINISHED",
        RunStatus.Failed => "FAILED",
        RunStatus.Stopped or RunStatus.Deleted => "KILLED",
        _ => "RUNNING",
    };

    /// <summary>A metric name as an MLflow key: characters other than letters, digits, <c>_ - . / space</c> become <c>_</c>.</summary>
    public static string Key(string name)
    {
        var key = new StringBuilder(name.Length);
        foreach (var c in name) key.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '/' or ' ' ? c : '_');
        var text = key.ToString();
        return text.Length > MlflowLimits.KeyLength ? text[..MlflowLimits.KeyLength] : text;
    }

    /// <summary>
    /// What is new in a chunk the run trained (<paramref name="chunk"/>, as journaled), taken at
    /// <paramref name="timestamp"/> (Unix milliseconds): its minibatches. Those of a later epoch wait until an epoch's
    /// last chunk has told how many minibatches an epoch has (the state of the run tells how many chunks it has).
    /// </summary>
    public MlflowRunUpdate Observe(ChunkRecorded chunk, long timestamp)
    {
        var p = Progress;
        var train = chunk.Records.Where(r => r.Mode == Mode.Train).ToList();
        if (chunksPerEpoch > 0 && chunk.Chunk == chunksPerEpoch - 1 && train.Count > 0)
            p = p with { MinibatchesPerEpoch = train.Max(r => r.Step) + 1 };
        held.AddRange(train);
        var metrics = new List<MlflowMetric>();
        var waiting = new List<MinibatchRecord>();
        foreach (var record in held)
        {
            if (record.Epoch > 0 && p.MinibatchesPerEpoch is null)
            {
                waiting.Add(record);
                continue;
            }
            var step = (long)record.Epoch * (p.MinibatchesPerEpoch ?? 0) + record.Step + 1;
            if (step <= p.TrainSteps) continue;
            metrics.AddRange(record.Numbers().Select(n => new MlflowMetric(Key($"minibatch_{n.Key}"), n.Value, timestamp, step)));
            p = p with { TrainSteps = step };
        }
        held.Clear();
        held.AddRange(waiting);
        Progress = p;
        return new MlflowRunUpdate(metrics, [], null, null, p);
    }

    /// <summary>The train minibatches waiting for an epoch's length (see <see cref="Observe(ChunkRecorded, long)"/>).</summary>
    private readonly List<MinibatchRecord> held = [];

    /// <summary>The run's chunks per epoch, from the last state seen (0 before one).</summary>
    private int chunksPerEpoch;

    /// <summary>What is new in <paramref name="state"/>, taken at <paramref name="timestamp"/> (Unix milliseconds): its closed epochs' metrics and its status; advances <see cref="Progress"/>.</summary>
    public MlflowRunUpdate Observe(RunState state, long timestamp)
    {
        var p = Progress;
        var metrics = new List<MlflowMetric>();
        chunksPerEpoch = state.ChunksPerEpoch;
        for (var epoch = p.TrainEpochs; epoch < state.TrainHistory.Count; epoch++)
            metrics.AddRange(state.TrainHistory[epoch].Select(n => new MlflowMetric(Key($"train_{n.Key}"), n.Value, timestamp, epoch + 1)));
        for (var epoch = p.ValidationEpochs; epoch < state.ValidationHistory.Count; epoch++)
            metrics.AddRange(state.ValidationHistory[epoch].Select(n => new MlflowMetric(Key($"val_{n.Key}"), n.Value, timestamp, epoch + 1)));
        p = p with
        {
            TrainEpochs = Math.Max(p.TrainEpochs, state.TrainHistory.Count),
            ValidationEpochs = Math.Max(p.ValidationEpochs, state.ValidationHistory.Count),
        };

        var tags = new List<KeyValuePair<string, string>>();
        string? status = null;
        long? end = null;
        if (StatusOf(state.Status) is var now && now != p.Status)
        {
            status = now;
            if (state.IsEnded) end = timestamp;
            tags.Add(new("rapidfire.status", state.Status.ToString()));
            tags.Add(new("rapidfire.ended_by", state.EndedBy ?? ""));
            if (state.Failure is { } failure) tags.Add(new("rapidfire.error", Truncate(failure.ToString(), MlflowLimits.TagValueLength)));
            p = p with { Status = now };
        }
        Progress = p;
        return new MlflowRunUpdate(metrics, tags, status, end, p);
    }

    /// <summary>The run's knobs as MLflow params: key = knob path, value as <c>runs.csv</c> writes it (at most 6,000 characters), secret knobs <c>***</c>.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Params(Config config)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var parameters = new List<KeyValuePair<string, string>>();
        // Secret-looking knobs are masked (SecretMask): a secret map's leaves are masked whole.
        foreach (var (path, value) in SecretMask.Mask(config).Leaves())
        {
            var key = Key(path);
            if (!seen.Add(key)) continue; // MLflow refuses a key twice in one request
            parameters.Add(new(key, Truncate(Text(value), MlflowLimits.ParamValueLength)));
        }
        return parameters;
    }

    private static string Text(object? value) => value switch
    {
        null => "",
        string text => text,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => ConfigValue.ToJson(value),
    };

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];
}
