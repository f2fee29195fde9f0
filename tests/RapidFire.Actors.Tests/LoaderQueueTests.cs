using RapidFire.Actors.Data;
using Job = RapidFire.Actors.Data.LoaderQueue.Job;

namespace RapidFire.Actors.Tests;

public class LoaderQueueTests
{
    private static LoaderQueue With(int capacity, params Job[] jobs) => jobs.Aggregate(new LoaderQueue(capacity), (q, j) => q.Enqueue(j));

    [Fact]
    public void Jobs_go_in_order_to_the_idle_workers_hired_up_to_the_capacity()
    {
        var (queue, hired, assigned) = With(2, new Job(1, 1), new Job(2, 2), new Job(3, 1)).Assign();

        Assert.Equal([0, 1], hired);
        Assert.Equal([(0, new Job(1, 1)), (1, new Job(2, 2))], assigned);
        Assert.Equal([new Job(3, 1)], queue.Waiting);
        var (again, more, none) = queue.Assign();
        Assert.Empty(more);
        Assert.Empty(none); // both workers are busy

        var (freed, ends) = again.Finished(0);
        Assert.False(ends);
        Assert.Equal([(0, new Job(3, 1))], freed.Assign().Assigned);
    }

    [Fact]
    public void A_retired_worker_is_replaced_and_its_runs_other_jobs_wait_for_its_call_while_the_other_runs_go_on()
    {
        // Run 1's first call is stuck on worker 0; runs 1 and 2 have more minibatches waiting.
        var (queue, _, _) = With(1, new Job(1, 1), new Job(2, 1), new Job(3, 2), new Job(4, 1)).Assign();

        var retired = queue.Retire(0);
        var (next, hired, assigned) = retired.Assign();

        Assert.Equal([1], hired); // a fresh thread takes the stuck one's place
        Assert.Equal([(1, new Job(3, 2))], assigned); // run 2's job goes first: run 1 is gated
        Assert.Equal(new HashSet<int> { 1 }, next.Gated);
        var (done, _) = next.Finished(1);
        Assert.Empty(done.Assign().Assigned); // run 1 still waits for its stuck call
        var (unstuck, ends) = done.Finished(0);
        Assert.True(ends); // the retired thread ends once its call returns
        Assert.Empty(unstuck.Gated);
        var (_, noHire, resumed) = unstuck.Assign();
        Assert.Empty(noHire);
        Assert.Equal([(1, new Job(2, 1))], resumed);
    }

    [Fact]
    public void Retiring_an_idle_or_already_retired_worker_changes_nothing()
    {
        var (queue, _, _) = With(2, new Job(1, 1)).Assign();

        Assert.Equal(queue, queue.Retire(1)); // idle
        var once = queue.Retire(0);
        Assert.Equal(once, once.Retire(0));
    }
}
