using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Host.Cli;
using RapidFire.Host.Cli.Progress;
using RapidFire.Spec;
using RapidFire.Spec.Progress;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RapidFire.Host.Tests;

/// <summary>Progress bars as text, the plain progress log, training progress from run states, and the live view.</summary>
public class ProgressTests
{
    private static Config Cfg(long epochs = 3, long hidden = 16) =>
        new([new("hidden", hidden), new("epochs", epochs), new("batch_size", 32L)]);

    private static RunState Run(int id, RunStatus status, int epochsDone, int chunksDone, int chunksPerEpoch = 4, long epochs = 3, string? endedBy = null) =>
        new(id, Cfg(epochs, 16 * id))
        {
            Status = status, EpochsDone = epochsDone, ChunksDone = chunksDone, ChunksPerEpoch = chunksPerEpoch, EndedBy = endedBy,
        };

    private sealed class Recorder : IProgress<ProgressUpdate>
    {
        public List<ProgressUpdate> Updates { get; } = [];
        public void Report(ProgressUpdate value) => Updates.Add(value);
    }

    private static string Render(IRenderable renderable, int width = 160)
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = width;
        console.Write(renderable);
        return output.ToString();
    }

    [Theory]
    [InlineData(0.45, 8, "[███░░░░░]  45%")]
    [InlineData(0.0, 8, "[░░░░░░░░]   0%")]
    [InlineData(1.0, 8, "[████████] 100%")]
    [InlineData(0.999, 8, "[███████░]  99%")]
    [InlineData(0.5, 4, "[██░░]  50%")]
    [InlineData(0.29, 10, "[██░░░░░░░░]  29%")]
    [InlineData(1.7, 4, "[████] 100%")]
    [InlineData(-0.2, 4, "[░░░░]   0%")]
    public void A_bar_fills_whole_cells_and_rounds_its_percentage_down(double fraction, int width, string expected) =>
        Assert.Equal(expected, ProgressBar.Text(fraction, width));

    [Fact]
    public void An_unknown_fraction_is_an_empty_bar_of_the_same_length()
    {
        Assert.Equal("[░░░░░░░░]    -", ProgressBar.Text(null, 8));
        Assert.Equal(ProgressBar.Text(0.5, 8).Length, ProgressBar.Text(null, 8).Length);
        Assert.Equal("-", ProgressBar.Percent(null));
        Assert.Equal("16%", ProgressBar.Percent(2.0 / 12));
    }

    [Fact]
    public void An_update_knows_its_fraction_only_with_a_total()
    {
        Assert.Equal(0.25, new ProgressUpdate("t", ProgressActivity.Download, 1, 4).Fraction);
        Assert.Null(new ProgressUpdate("t", ProgressActivity.Checkpoint, 3, null).Fraction);
        Assert.Equal(1, new ProgressUpdate("t", ProgressActivity.Download, 0, 0).Fraction);
        Assert.Equal(1, new ProgressUpdate("t", ProgressActivity.Download, 9, 4).Fraction);
    }

    [Fact]
    public void A_run_counts_its_chunks_trained_out_of_epochs_times_chunks_per_epoch()
    {
        var update = TrainingProgress.Of(Run(2, RunStatus.Ongoing, epochsDone: 1, chunksDone: 2));
        Assert.Equal(("run 2", 6L, (long?)12L, 2), (update.Task, update.Done, update.Total, update.RunId));
        Assert.Equal(ProgressActivity.Training, update.Activity);
        Assert.Equal("epoch 2/3 chunk 2/4 trained", update.Detail);
        Assert.Equal(0.5, update.Fraction);
        Assert.False(update.Finished);

        Assert.Null(TrainingProgress.Of(new RunState(1, Cfg())).Total);                 // chunks per epoch unknown before it starts
        Assert.Equal("waiting", TrainingProgress.Of(new RunState(1, Cfg())).Detail);
        Assert.Equal("epoch 2/3 started", TrainingProgress.Detail(Run(1, RunStatus.Ongoing, 1, 0)));
        var ended = TrainingProgress.Of(Run(1, RunStatus.Completed, 2, 0, endedBy: EndReason.Converged));
        Assert.True(ended.Finished);
        Assert.Equal("completed after 2/3 epochs", ended.Detail);
        Assert.Equal(8.0 / 12, ended.Fraction);                                         // converged early: the status says it is done
    }

    [Fact]
    public void All_runs_together_count_what_was_trained_of_what_was_planned_and_estimate_runs_not_started()
    {
        var overall = TrainingProgress.Overall([
            Run(1, RunStatus.Ongoing, 1, 1),                                            // 5 of 12
            Run(2, RunStatus.Stopped, 0, 3, endedBy: EndReason.User),                   // stopped on purpose: its plan ended at 3
            new RunState(3, Cfg()),                                                     // not started: 3 x 4 like the others
            Run(4, RunStatus.Deleted, 0, 2, endedBy: EndReason.User),                   // left out
            Run(5, RunStatus.Stopped, 0, 1, endedBy: EndReason.Cancelled),              // cancelled: 1 of the 12 it planned
        ]);
        Assert.Equal((9L, (long?)39L), (overall.Done, overall.Total));
        Assert.Equal("9/39 chunks, 2/4 runs ended, 2 stopped", overall.Detail);
        Assert.Equal(TrainingProgress.OverallTask, overall.Task);
        Assert.False(overall.Finished);

        var unknown = TrainingProgress.Overall([new RunState(1, Cfg())]);
        Assert.Null(unknown.Total);
        Assert.Equal("0 chunks, 0/1 runs ended", unknown.Detail);

        // A completed run, converged early or not, planned what it trained; a failed one fell short of its plan.
        var done = TrainingProgress.Overall([
            Run(1, RunStatus.Completed, 3, 0, endedBy: EndReason.Epochs), Run(2, RunStatus.Completed, 1, 0, endedBy: EndReason.Converged),
        ]);
        Assert.Equal((16L, (long?)16L, true, "16/16 chunks, 2/2 runs ended"), (done.Done, done.Total, done.Finished, done.Detail));
        var failed = TrainingProgress.Overall([Run(1, RunStatus.Completed, 3, 0, endedBy: EndReason.Epochs), Run(2, RunStatus.Failed, 0, 1, endedBy: EndReason.Failure)]);
        Assert.Equal((13L, (long?)24L, true, "13/24 chunks, 2/2 runs ended, 1 failed"), (failed.Done, failed.Total, failed.Finished, failed.Detail));
    }

    [Fact]
    public void After_a_cancel_the_last_training_line_says_what_was_trained_of_what_was_planned_not_100_percent()
    {
        // Four runs of 1 epoch x 2 chunks; each trained its first chunk, then Ctrl+C stopped them all.
        var output = new StringWriter();
        var now = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var feed = new TrainingProgress.Feed(new ProgressLog(output, TimeSpan.FromSeconds(5), () => now));
        var ids = Enumerable.Range(1, 4).ToList();
        foreach (var id in ids) feed.Take(new RunChanged(Run(id, RunStatus.Ongoing, 0, 0, chunksPerEpoch: 2, epochs: 1)));
        foreach (var id in ids) feed.Take(new RunChanged(Run(id, RunStatus.Ongoing, 0, 1, chunksPerEpoch: 2, epochs: 1)));
        now += TimeSpan.FromSeconds(1);
        foreach (var id in ids) feed.Take(new RunChanged(Run(id, RunStatus.Stopped, 0, 1, chunksPerEpoch: 2, epochs: 1, endedBy: EndReason.Cancelled)));

        var training = output.ToString().Split(Environment.NewLine).Where(l => l.StartsWith("training: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["training: 1/8 chunks, 0/4 runs ended (12%)", "training: 4/8 chunks, 4/4 runs ended, 4 stopped (50%)"], training);
    }

    [Fact]
    public void The_feed_reports_a_run_when_it_trains_a_chunk_all_runs_when_they_change_and_counts_checkpoints()
    {
        var sink = new Recorder();
        var feed = new TrainingProgress.Feed(sink);
        feed.Take(new RunChanged(Run(1, RunStatus.Ongoing, 0, 0)));
        feed.Take(new RunChanged(Run(1, RunStatus.Ongoing, 0, 0)));                     // nothing new
        feed.Take(new RunChanged(Run(1, RunStatus.Ongoing, 0, 1)));
        feed.Take(new TaskDone(new GpuProtocol.TaskFinished("cpu:0", RunTask.Train(1, 0, 0),
            new GpuProtocol.Trained(0.5, new GpuProtocol.TaskTiming(1, 0.1, 0), [], new CheckpointRef(1, 0, 0)))));
        feed.Take(new TaskDone(new GpuProtocol.TaskFinished("cpu:0", RunTask.Validate(1, 0), new GpuProtocol.Validated(new GpuProtocol.TaskTiming(1, 0.1, 0), []))));
        feed.Take(new RunChanged(Run(1, RunStatus.Completed, 3, 0, endedBy: EndReason.Epochs)));

        Assert.Equal([
            "run 1: 0/12 epoch 1/3 started",
            "training: 0/12 0/12 chunks, 0/1 runs ended",
            "run 1: 1/12 epoch 1/3 chunk 1/4 trained",
            "training: 1/12 1/12 chunks, 0/1 runs ended",
            "checkpoints: 1/- 1 written, last run-1/e0000-c0000.ckpt",
            "training: 12/12 12/12 chunks, 1/1 runs ended",                          // the ended run itself is left to the status lines
        ], sink.Updates.Select(u => $"{u.Task}: {u.Done}/{(u.Total is { } t ? t.ToString() : "-")} {u.Detail}"));
        Assert.True(sink.Updates[^1].Finished);
    }

    [Fact]
    public void The_feed_passes_on_the_progress_other_work_reports_such_as_s3_downloads()
    {
        var sink = new Recorder();
        var feed = new TrainingProgress.Feed(sink);
        var download = new ProgressUpdate("download s3://b/mnist", ProgressActivity.Download, 40, 300, "40/300 objects, 0.1 MB, 0 cached");
        feed.Take(new ProgressReported(download));
        feed.Take(new ProgressReported(download with { Done = 300, Detail = "300/300 objects" }));
        Assert.Equal([download, download with { Done = 300, Detail = "300/300 objects" }], sink.Updates);
    }

    [Fact]
    public void The_plain_log_writes_a_task_first_when_complete_when_it_finishes_short_of_it_and_otherwise_at_most_once_per_interval()
    {
        var output = new StringWriter();
        var now = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var log = new ProgressLog(output, TimeSpan.FromSeconds(5), () => now);
        ProgressUpdate Chunks(long done) => new("run 1", ProgressActivity.Training, done, 8, $"chunk {done}/8 trained", 1);

        log.Report(Chunks(0));                                                          // nothing done yet: no line
        log.Report(Chunks(1));                                                          // first
        now += TimeSpan.FromSeconds(2);
        log.Report(Chunks(2));                                                          // too soon
        now += TimeSpan.FromSeconds(3);
        log.Report(Chunks(3));                                                          // 5 s since the last line
        log.Report(Chunks(3));                                                          // no progress
        now += TimeSpan.FromSeconds(1);
        log.Report(Chunks(8));                                                          // complete
        log.Report(Chunks(8) with { Finished = true });                                 // finished, and its line said so
        log.Report(new ProgressUpdate("run 2", ProgressActivity.Training, 3, 8, "chunk 3/8 trained", 2));
        var stopped = new ProgressUpdate("run 2", ProgressActivity.Training, 3, 8, "stopped after 3/8 chunks", 2) { Finished = true };
        log.Report(stopped);                                                            // finished short of complete: once
        log.Report(stopped);
        log.Report(new ProgressUpdate("download train.csv", ProgressActivity.Download, 512, 2048));
        log.Report(new ProgressUpdate("checkpoints", ProgressActivity.Checkpoint, 2, null, "2 written"));

        Assert.Equal([
            "run 1: chunk 1/8 trained (12%)",
            "run 1: chunk 3/8 trained (37%)",
            "run 1: chunk 8/8 trained (100%)",
            "run 2: chunk 3/8 trained (37%)",
            "run 2: stopped after 3/8 chunks (37%)",
            "download train.csv: 512/2048 (25%)",
            "checkpoints: 2 written",
        ], output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain('\u001b', output.ToString());
    }

    [Fact]
    public void The_board_keeps_each_tasks_latest_update_in_first_reported_order_and_draws_bars()
    {
        var board = new ProgressBoard();
        board.Report(new ProgressUpdate("download train.csv", ProgressActivity.Download, 1, 4, "1/4 MB"));
        board.Report(new ProgressUpdate("checkpoints", ProgressActivity.Checkpoint, 1, null, "1 written"));
        board.Report(new ProgressUpdate("download train.csv", ProgressActivity.Download, 2, 4, "2/4 MB"));
        Assert.Equal(["download train.csv", "checkpoints"], board.Tasks.Select(t => t.Task));

        var text = Render(board.Render(width: 10));
        Assert.Matches(@"download train.csv\s+\[█████░░░░░\]  50%\s+2/4 MB", text);
        Assert.Matches(@"checkpoints\s+1 written", text);
        Assert.DoesNotContain("download", Render(board.Render(t => t.Activity != ProgressActivity.Download)));
    }

    [Fact]
    public void The_live_view_shows_all_runs_bar_then_the_table_with_a_bar_per_run()
    {
        var runs = new RunBoard([Cfg(hidden: 16), Cfg(hidden: 32)]);
        var work = new ProgressBoard();
        var feed = new TrainingProgress.Feed(work);
        foreach (var e in new ExperimentEvent[] { new RunChanged(Run(1, RunStatus.Ongoing, 1, 2)), new RunChanged(Run(2, RunStatus.Ongoing, 0, 0)) })
        {
            runs.Take(e);
            feed.Take(e);
        }

        var text = Render(runs.LiveView(work));
        var lines = text.Split(Environment.NewLine);
        Assert.StartsWith("training", lines[0]);
        Assert.Matches(@"^training\s+\[███████░░░░░░░░░░░░░░░░░░░░░░░\]  25%\s+6/24 chunks, 0/2 runs ended", lines[0]);
        Assert.DoesNotContain(lines, l => l.StartsWith("run 1", StringComparison.Ordinal));   // the runs' bars are in the table
        Assert.Matches(@"│ run │ status\s+│ progress\s+│ trained\s+│ hidden │", text);
        Assert.Matches(@"│ 1\s+│ Ongoing │ epoch 2/3 chunk 3/4 │ \[██████░░░░░░\]  50% │ 16\s+│", text);
        Assert.Matches(@"│ 2\s+│ Ongoing │ epoch 1/3 chunk 1/4 │ \[░░░░░░░░░░░░\]   0% │ 32\s+│", text);
        Assert.DoesNotContain("trained", Render(runs.Table()));                          // the final table has no bars
    }
}
