using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Actors.Tests.Checkpoints;

public class CheckpointChoiceTests
{
    private static readonly Config Cfg = new([new("epochs", 3L), new("batch_size", 8L)]);

    /// <summary>Run 2 after <paramref name="epochs"/> epochs of 3 chunks, with a validation row per epoch.</summary>
    private static RunState Run(int epochs, params (double Loss, double Accuracy)[] validation) => new(2, Cfg)
    {
        Status = RunStatus.Completed,
        ChunksPerEpoch = 3,
        EpochsDone = epochs,
        LastCheckpoint = epochs == 0 ? null : new CheckpointRef(2, epochs - 1, 2),
        ValidationHistory = [.. validation.Select(v => (IReadOnlyDictionary<string, double>)new Dictionary<string, double>
        {
            ["loss"] = v.Loss,
            ["top1_accuracy"] = v.Accuracy,
        })],
    };

    /// <summary>What retention leaves of a completed run: every epoch end (the last is the final).</summary>
    private static List<CheckpointRef> EpochEnds(int epochs) => [.. Enumerable.Range(0, epochs).Select(e => new CheckpointRef(2, e, 2))];

    [Theory]
    [InlineData("final", "final")]
    [InlineData(" FINAL ", "final")]
    [InlineData("epoch:1", "epoch:1")]
    [InlineData("best:top1_accuracy", "best:top1_accuracy:max")]
    [InlineData("best:loss", "best:loss:min")]
    [InlineData("best:val_error", "best:val_error:min")]
    [InlineData("best:nll_loss", "best:nll_loss:min")]
    [InlineData("best:loss:max", "best:loss:max")]
    [InlineData("best:recall_8:min", "best:recall_8:min")]
    public void Choices_parse_and_print_back_with_their_direction(string text, string printed) =>
        Assert.Equal(printed, CheckpointChoice.Parse(text).ToString());

    [Theory]
    [InlineData("last")]
    [InlineData("epoch:0")]
    [InlineData("epoch:-1")]
    [InlineData("epoch:two")]
    [InlineData("best:")]
    [InlineData("best::max")]
    [InlineData("best:a:b")]
    public void Other_texts_are_refused_listing_the_forms(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => CheckpointChoice.Parse(text));
        Assert.StartsWith($"checkpoint '{text}' is not one of final, best:<metric>, best:<metric>:min|max or epoch:<n>", e.Message);
        Assert.DoesNotContain("(Parameter", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Final_is_the_journaled_newest_checkpoint()
    {
        var run = Run(3, (0.5, 0.8), (0.4, 0.9), (0.45, 0.85));
        var picked = CheckpointChoice.Final.Resolve(run, EpochEnds(3));
        Assert.Equal(new CheckpointRef(2, 2, 2), picked.Checkpoint);
        Assert.Null(picked.Error);
    }

    [Fact]
    public void Final_of_a_run_stopped_mid_epoch_is_its_last_chunk()
    {
        var run = Run(1, (0.5, 0.8)) with { Status = RunStatus.Stopped, ChunksDone = 2, LastCheckpoint = new CheckpointRef(2, 1, 1) };
        var picked = CheckpointChoice.Final.Resolve(run, [new(2, 0, 2), new(2, 1, 0), new(2, 1, 1)]);
        Assert.Equal(new CheckpointRef(2, 1, 1), picked.Checkpoint);
    }

    [Fact]
    public void A_missing_final_checkpoint_is_named()
    {
        var run = Run(3, (0.5, 0.8), (0.4, 0.9), (0.45, 0.85));
        var picked = CheckpointChoice.Final.Resolve(run, EpochEnds(2), key => $"/x/checkpoints/{key.RelativePath}");
        Assert.Null(picked.Checkpoint);
        Assert.Equal("run 2's final checkpoint (/x/checkpoints/run-2/e0002-c0002.ckpt) is missing", picked.Error);
        Assert.Equal("run 2 has no checkpoint (it trained 0 chunks; a fit with save-strategy none keeps none)",
            CheckpointChoice.Final.Resolve(Run(0), []).Error);
    }

    [Fact]
    public void Epoch_n_is_the_last_chunk_of_that_epoch()
    {
        var run = Run(3, (0.5, 0.8), (0.4, 0.9), (0.45, 0.85));
        Assert.Equal(new CheckpointRef(2, 0, 2), CheckpointChoice.Parse("epoch:1").Resolve(run, EpochEnds(3)).Checkpoint);
        Assert.Equal("end of epoch 3", CheckpointChoice.Parse("epoch:3").Resolve(run, EpochEnds(3)).Reason);
    }

    [Fact]
    public void An_epoch_the_run_never_reached_is_an_error_saying_how_far_it_got()
    {
        var run = Run(3, (0.5, 0.8), (0.4, 0.9), (0.45, 0.85));
        Assert.Equal("run 2 has no checkpoint at the end of epoch 5 (it trained 3 epochs)",
            CheckpointChoice.Parse("epoch:5").Resolve(run, EpochEnds(3)).Error);
        Assert.Equal("run 2 has no checkpoint at the end of epoch 2 (it trained 1 epoch)",
            CheckpointChoice.Parse("epoch:2").Resolve(Run(1, (0.5, 0.8)), EpochEnds(1)).Error);
        Assert.Equal("run 2's checkpoint at the end of epoch 2 (run-2/e0001-c0002.ckpt) is missing",
            CheckpointChoice.Parse("epoch:2").Resolve(run, [new(2, 0, 2), new(2, 2, 2)]).Error);
    }

    [Fact]
    public void Best_maximizes_accuracies_and_minimizes_losses_by_name()
    {
        var run = Run(3, (0.5, 0.8), (0.3, 0.85), (0.45, 0.9));
        var accuracy = CheckpointChoice.Parse("best:top1_accuracy").Resolve(run, EpochEnds(3));
        Assert.Equal(new CheckpointRef(2, 2, 2), accuracy.Checkpoint);
        Assert.Equal("best top1_accuracy (max): 0.9 at epoch 3", accuracy.Reason);
        var loss = CheckpointChoice.Parse("best:loss").Resolve(run, EpochEnds(3));
        Assert.Equal(new CheckpointRef(2, 1, 2), loss.Checkpoint);
        Assert.Equal(new CheckpointRef(2, 0, 2), CheckpointChoice.Parse("best:loss:max").Resolve(run, EpochEnds(3)).Checkpoint);
        Assert.Equal(new CheckpointRef(2, 0, 2), CheckpointChoice.Parse("best:top1_accuracy:min").Resolve(run, EpochEnds(3)).Checkpoint);
    }

    [Fact]
    public void Best_takes_the_earliest_of_equal_epochs_and_never_a_NaN()
    {
        var run = Run(3, (double.NaN, 0.9), (0.4, 0.9), (0.4, 0.8));
        Assert.Equal(new CheckpointRef(2, 0, 2), CheckpointChoice.Parse("best:top1_accuracy").Resolve(run, EpochEnds(3)).Checkpoint);
        Assert.Equal(new CheckpointRef(2, 1, 2), CheckpointChoice.Parse("best:loss").Resolve(run, EpochEnds(3)).Checkpoint);
    }

    [Fact]
    public void Best_by_an_unknown_metric_or_without_validation_says_what_is_there()
    {
        var run = Run(2, (0.5, 0.8), (0.4, 0.9));
        Assert.Equal("run 2's validation metrics have no 'top5_accuracy' to pick its best epoch by; they have: loss, top1_accuracy",
            CheckpointChoice.Parse("best:top5_accuracy").Resolve(run, EpochEnds(2)).Error);
        Assert.StartsWith("run 2 has no validation metrics to pick its best epoch by loss",
            CheckpointChoice.Parse("best:loss").Resolve(Run(2), EpochEnds(2)).Error);
    }

    [Fact]
    public void The_best_epochs_checkpoint_must_exist()
    {
        var run = Run(3, (0.5, 0.8), (0.3, 0.85), (0.45, 0.9));
        Assert.Equal("run 2's checkpoint at the end of epoch 2 (run-2/e0001-c0002.ckpt) is missing",
            CheckpointChoice.Parse("best:loss").Resolve(run, [new(2, 0, 2), new(2, 2, 2)]).Error);
    }
}
