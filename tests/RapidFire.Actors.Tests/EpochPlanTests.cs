using RapidFire.Actors.Scheduling;

namespace RapidFire.Actors.Tests;

public class EpochPlanTests
{
    [Fact]
    public void An_epoch_is_cut_into_chunks_counted_in_minibatches_covering_every_row_once()
    {
        var plan = EpochPlan.ForTraining(rowCount: 103, batchSize: 10, chunks: 4, seed: 1, epoch: 0);
        Assert.Equal(11, plan.MinibatchCount);
        Assert.Equal(4, plan.ChunkCount);
        var chunks = Enumerable.Range(0, 4).Select(plan.Chunk).ToList();
        Assert.Equal([2, 3, 3, 3], chunks.Select(c => c.Count));
        var rows = chunks.SelectMany(c => c).SelectMany(m => m).ToList();
        Assert.Equal(Enumerable.Range(0, 103), rows.Order());
        Assert.Equal(3, chunks[^1][^1].Length); // the last minibatch keeps the remainder
    }

    [Fact]
    public void The_order_is_a_shuffle_reproducible_from_seed_and_epoch()
    {
        int[] Rows(long seed, int epoch) => EpochPlan.ForTraining(50, 5, 2, seed, epoch).Chunk(0).SelectMany(m => m).ToArray();
        Assert.Equal(Rows(7, 0), Rows(7, 0));
        Assert.NotEqual(Rows(7, 0), Rows(7, 1));
        Assert.NotEqual(Rows(7, 0), Rows(8, 0));
        Assert.NotEqual(Enumerable.Range(0, 25).ToArray(), Rows(7, 0));
    }

    [Fact]
    public void Evaluation_keeps_the_file_order_in_one_chunk_and_chunks_never_outnumber_minibatches()
    {
        var eval = EpochPlan.ForEvaluation(7, 3);
        Assert.Equal(1, eval.ChunkCount);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], eval.Chunk(0).SelectMany(m => m));
        Assert.Equal(2, EpochPlan.ChunksFor(rowCount: 20, batchSize: 10, chunks: 8));
    }
}
