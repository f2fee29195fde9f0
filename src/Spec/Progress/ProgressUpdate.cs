namespace RapidFire.Spec.Progress;

/// <summary>
/// How far one piece of long work has come: a run's training, a data download, checkpoint writes. Whoever does the work
/// reports updates to an <see cref="IProgress{T}"/> of this type; whoever shows them (the CLI's live board, its plain
/// log lines, a dashboard) keeps the latest update of each <see cref="Task"/>.
/// </summary>
/// <remarks>
/// An update is a snapshot, not a delta: a sink may drop or throttle updates and still show the truth. Units are the
/// reporter's (chunks, bytes, files); <see cref="Detail"/> says them for people.
/// </remarks>
/// <param name="Task">What is being done, unique among the tasks shown together: <c>run 2</c>, <c>training</c>,
/// <c>checkpoints</c>, <c>download s3://bucket/train.csv</c>.</param>
/// <param name="Activity">The kind of work (<see cref="ProgressActivity"/>), for grouping and filtering.</param>
/// <param name="Done">Units done so far.</param>
/// <param name="Total">Units in all; null when unknown (the work is then shown as a counter).</param>
/// <param name="Detail">A short description of where the work stands, for people: <c>epoch 1/3 chunk 2/4 trained</c>.</param>
/// <param name="RunId">The run the work belongs to, if it belongs to one.</param>
public sealed record ProgressUpdate(string Task, string Activity, long Done, long? Total, string? Detail = null, int? RunId = null)
{
    /// <summary>Whether the work has ended (finished, failed or given up); its last update stays as it was.</summary>
    public bool Finished { get; init; }

    /// <summary>The fraction done, in [0, 1]; null when the total is unknown. Work with nothing to do is done.</summary>
    public double? Fraction => Total switch
    {
        null => null,
        <= 0 => 1,
        { } total => Math.Clamp((double)Done / total, 0, 1),
    };
}

/// <summary>The kinds of long work a <see cref="ProgressUpdate"/> reports.</summary>
public static class ProgressActivity
{
    /// <summary>Training: a run's chunks, or all runs' chunks together.</summary>
    public const string Training = "training";

    /// <summary>Bringing data to this machine (an ESF, object files, a model from a remote store).</summary>
    public const string Download = "download";

    /// <summary>Writing checkpoints of runs' trained state.</summary>
    public const string Checkpoint = "checkpoint";
}
