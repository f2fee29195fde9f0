using RapidFire.Actors.Checkpoints;

namespace RapidFire.Actors.Tests.Checkpoints;

public class CheckpointRetentionTests
{
    /// <summary>Every checkpoint of run 1 up to and including (epoch, chunk), with 3 chunks per epoch.</summary>
    private static List<CheckpointRef> Upto(int epoch, int chunk, int chunksPerEpoch = 3) =>
        Enumerable.Range(0, epoch * chunksPerEpoch + chunk + 1)
            .Select(i => new CheckpointRef(1, i / chunksPerEpoch, i % chunksPerEpoch))
            .ToList();

    [Fact]
    public void A_training_run_keeps_its_last_two_and_every_epoch_end()
    {
        var doomed = CheckpointRetention.Default.SelectForDeletion(Upto(2, 1), chunksPerEpoch: 3, runEnded: false);

        // kept: e0c2 and e1c2 (epoch ends), e2c0 and e2c1 (the last two, e2c1 the final)
        Assert.Equal([new(1, 0, 0), new(1, 0, 1), new(1, 1, 0), new(1, 1, 1)], doomed);
    }

    [Fact]
    public void An_epoch_end_inside_the_window_counts_towards_it()
    {
        var doomed = CheckpointRetention.Default.SelectForDeletion(Upto(2, 0), chunksPerEpoch: 3, runEnded: false);

        Assert.Equal([new(1, 0, 0), new(1, 0, 1), new(1, 1, 0), new(1, 1, 1)], doomed);
    }

    [Fact]
    public void A_larger_window_keeps_more()
    {
        var doomed = new CheckpointRetention(keepLast: 4).SelectForDeletion(Upto(2, 1), chunksPerEpoch: 3, runEnded: false);

        // kept: e0c2 (epoch end), e1c1, e1c2, e2c0, e2c1 (the last four)
        Assert.Equal([new(1, 0, 0), new(1, 0, 1), new(1, 1, 0)], doomed);
    }

    [Fact]
    public void An_ended_run_keeps_only_its_epoch_ends_and_its_final_checkpoint()
    {
        var stoppedMidEpoch = CheckpointRetention.Default.SelectForDeletion(Upto(2, 1), chunksPerEpoch: 3, runEnded: true);
        Assert.Equal([new(1, 0, 0), new(1, 0, 1), new(1, 1, 0), new(1, 1, 1), new(1, 2, 0)], stoppedMidEpoch);

        var completed = CheckpointRetention.Default.SelectForDeletion(Upto(1, 2), chunksPerEpoch: 3, runEnded: true);
        Assert.Equal([new(1, 0, 0), new(1, 0, 1), new(1, 1, 0), new(1, 1, 1)], completed);
    }

    [Fact]
    public void The_final_checkpoint_is_kept_even_with_a_window_of_one_mid_epoch()
    {
        var doomed = new CheckpointRetention(keepLast: 1).SelectForDeletion(Upto(0, 1), chunksPerEpoch: 3, runEnded: false);

        Assert.Equal([new(1, 0, 0)], doomed);
    }

    [Fact]
    public void With_one_chunk_per_epoch_every_checkpoint_is_an_epoch_end_and_kept()
    {
        Assert.Empty(CheckpointRetention.Default.SelectForDeletion(Upto(5, 0, chunksPerEpoch: 1), chunksPerEpoch: 1, runEnded: true));
    }

    [Fact]
    public void Fewer_checkpoints_than_the_window_delete_nothing_and_order_does_not_matter()
    {
        Assert.Empty(CheckpointRetention.Default.SelectForDeletion([], chunksPerEpoch: 3, runEnded: false));
        Assert.Empty(CheckpointRetention.Default.SelectForDeletion([new(1, 0, 1), new(1, 0, 0)], chunksPerEpoch: 3, runEnded: false));

        var shuffled = Upto(2, 1);
        shuffled.Reverse();
        Assert.Equal(CheckpointRetention.Default.SelectForDeletion(Upto(2, 1), 3, false),
            CheckpointRetention.Default.SelectForDeletion(shuffled, 3, false));
    }

    [Fact]
    public void Checkpoints_of_two_runs_are_refused_naming_both()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            CheckpointRetention.Default.SelectForDeletion([new(1, 0, 0), new(2, 0, 0)], chunksPerEpoch: 3, runEnded: false));
        Assert.Contains("run 1", error.Message);
        Assert.Contains("run 2", error.Message);
    }

    [Fact]
    public void A_chunk_beyond_the_chunks_per_epoch_is_refused_naming_the_checkpoint()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            CheckpointRetention.Default.SelectForDeletion([new(1, 0, 0), new(1, 0, 3)], chunksPerEpoch: 3, runEnded: false));
        Assert.Contains("run 1 epoch 0 chunk 3", error.Message);
    }

    [Fact]
    public void A_window_below_one_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointRetention(keepLast: 0));
    }
}
