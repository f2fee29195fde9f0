using System.Globalization;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec.Progress;

namespace RapidFire.Host.Cli.Progress;

/// <summary>
/// Training progress as <see cref="ProgressUpdate"/>s: a run's chunks trained out of its <c>epochs</c> × chunks per
/// epoch, and all runs together. Pure functions of run states.
/// </summary>
public static class TrainingProgress
{
    /// <summary>The task of all runs together.</summary>
    public const string OverallTask = "training";

    /// <summary>The task counting checkpoint writes.</summary>
    public const string CheckpointTask = "checkpoints";

    /// <summary>The task of run <paramref name="runId"/>: <c>run 2</c>.</summary>
    public static string RunTask(int runId) => string.Create(CultureInfo.InvariantCulture, $"run {runId}");

    /// <summary>
    /// A run's progress: chunks trained (<see cref="RunState.ChunksTrained"/>) out of <c>epochs</c> × chunks per epoch
    /// (unknown until the run starts). A run that converged early ends below 100%: its status says it completed.
    /// </summary>
    public static ProgressUpdate Of(RunState run) => new(RunTask(run.RunId), ProgressActivity.Training, run.ChunksTrained,
        run.ChunksPerEpoch > 0 ? (long)run.MaxEpochs * run.ChunksPerEpoch : null, Detail(run), run.RunId)
    {
        Finished = run.IsEnded,
    };

    /// <summary>Where a run stands, after its last trained chunk: <c>epoch 1/3 chunk 2/4 trained</c>.</summary>
    public static string Detail(RunState run) => run.Status switch
    {
        RunStatus.New => "waiting",
        _ when run.IsEnded => $"{run.Status.ToString().ToLowerInvariant()} after {run.EpochsDone}/{run.MaxEpochs} epochs",
        _ when run.ChunksDone == 0 => $"epoch {run.EpochsDone + 1}/{run.MaxEpochs} started",
        _ => $"epoch {run.EpochsDone + 1}/{run.MaxEpochs} chunk {run.ChunksDone}/{run.ChunksPerEpoch} trained",
    };

    /// <summary>
    /// All runs together (deleted ones left out): chunks trained out of the chunks the runs planned to train
    /// (<c>epochs</c> × chunks per epoch). A completed run (its epochs reached, or converged) or one stopped on purpose
    /// (by the user, by pruning) planned no more than it trained; a cancelled or failed run did not finish its plan, so
    /// its untrained chunks stay in the total (after a cancel, <c>4/8 chunks</c>, never <c>4/4</c>). The detail counts
    /// the stopped and failed runs. A run that has not started yet is
    /// counted with the chunks per epoch of the runs that have. The total is unknown while no run has started.
    /// </summary>
    public static ProgressUpdate Overall(IEnumerable<RunState> runs)
    {
        var shown = runs.Where(r => r.Status != RunStatus.Deleted).ToList();
        var known = shown.Select(r => r.ChunksPerEpoch).DefaultIfEmpty(0).Max();
        long done = shown.Sum(r => (long)r.ChunksTrained);
        long? total = known == 0 ? null
            : shown.Sum(r => EndedItsPlan(r) ? r.ChunksTrained : (long)r.MaxEpochs * (r.ChunksPerEpoch > 0 ? r.ChunksPerEpoch : known));
        var ended = shown.Count(r => r.IsEnded);
        var chunks = total is { } t ? $"{done}/{t} chunks" : $"{done} chunks";
        var stopped = shown.Count(r => r.Status == RunStatus.Stopped);
        var failed = shown.Count(r => r.Status == RunStatus.Failed);
        var shortOfPlan = (stopped > 0 ? $", {stopped} stopped" : "") + (failed > 0 ? $", {failed} failed" : "");
        return new ProgressUpdate(OverallTask, ProgressActivity.Training, done, total, $"{chunks}, {ended}/{shown.Count} runs ended{shortOfPlan}")
        {
            Finished = shown.Count > 0 && ended == shown.Count,
        };
    }

    /// <summary>
    /// Whether the run's plan ended with what it trained: it completed (its epochs, or converged), or it was stopped on
    /// purpose (by the user or a pruning rule). A cancelled or failed run fell short of its plan.
    /// </summary>
    private static bool EndedItsPlan(RunState run) =>
        run.Status == RunStatus.Completed || (run.Status == RunStatus.Stopped && run.EndedBy != EndReason.Cancelled);

    /// <summary>
    /// Turns an experiment's events into progress updates for <paramref name="sink"/>: a run's update when its chunks
    /// trained (or its total) change while it trains (ended runs are left to the status lines and the table), the
    /// overall update when it changes, a count of the checkpoints written, read off finished chunk tasks, and the
    /// updates other work reports itself (<see cref="ProgressReported"/>: downloads from S3), as they come.
    /// </summary>
    public sealed class Feed(IProgress<ProgressUpdate> sink)
    {
        private readonly object gate = new();
        private readonly Dictionary<int, RunState> runs = [];
        private ProgressUpdate? overall;
        private long checkpoints;

        /// <summary>Takes one event (on a runtime thread; events of one experiment come one at a time).</summary>
        public void Take(ExperimentEvent e)
        {
            lock (gate)
            {
                switch (e)
                {
                    case RunChanged { Run: var run }:
                        var before = runs.GetValueOrDefault(run.RunId);
                        runs[run.RunId] = run;
                        if (!run.IsEnded && (before is null || before.ChunksTrained != run.ChunksTrained || before.ChunksPerEpoch != run.ChunksPerEpoch))
                            sink.Report(Of(run));
                        var now = Overall(runs.Values);
                        if (overall is null || now.Done != overall.Done || now.Total != overall.Total || now.Detail != overall.Detail)
                            sink.Report(overall = now);
                        break;
                    case ProgressReported { Update: var update }:
                        sink.Report(update); // downloads and other work that reports its own progress
                        break;
                    case TaskDone { Task.Outcome: GpuProtocol.Trained { Checkpoint: { } checkpoint } }:
                        checkpoints++;
                        sink.Report(new ProgressUpdate(CheckpointTask, ProgressActivity.Checkpoint, checkpoints, null,
                            string.Create(CultureInfo.InvariantCulture, $"{checkpoints} written, last {checkpoint.RelativePath}")));
                        break;
                }
            }
        }
    }
}
