using System.Collections.Immutable;

namespace RapidFire.Actors.Data;

/// <summary>
/// Which loader thread prepares which minibatch, as a pure immutable value: the <see cref="DataLoaderActor"/>'s
/// decisions, tested without threads.
/// </summary>
/// <remarks>
/// Jobs wait in the order asked and go to idle live workers. A worker whose MLSpec call has run past the stall limit
/// (or past the call time limit) is <b>retired</b>: it takes no more jobs, ends when its call returns, and a fresh
/// worker takes its place, so one run's stuck <c>RowPrep</c> never holds the loaders the other runs need. While a run
/// has a call on a retired worker it is <b>gated</b>: its other jobs wait for that call, so a stuck run holds one
/// thread, not one per minibatch it asks for.
/// </remarks>
public sealed record LoaderQueue
{
    /// <summary>One minibatch to prepare, for run <paramref name="RunId"/>.</summary>
    public sealed record Job(long Id, int RunId);

    /// <summary>A queue with <paramref name="capacity"/> live workers (hired by the first <see cref="Assign"/>).</summary>
    public LoaderQueue(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>The number of live workers kept.</summary>
    public int Capacity { get; }

    /// <summary>The jobs not yet given to a worker, oldest first.</summary>
    public ImmutableList<Job> Waiting { get; private init; } = [];

    /// <summary>The workers that take jobs.</summary>
    public ImmutableSortedSet<int> Live { get; private init; } = [];

    /// <summary>The job each busy worker (live or retired) runs.</summary>
    public ImmutableDictionary<int, Job> Busy { get; private init; } = ImmutableDictionary<int, Job>.Empty;

    /// <summary>The workers retired while busy: each ends when its call returns.</summary>
    public ImmutableHashSet<int> Retired { get; private init; } = [];

    /// <summary>The id the next hired worker gets.</summary>
    private int NextWorker { get; init; }

    /// <summary>The runs with a call on a retired worker: their other jobs wait for it.</summary>
    public IReadOnlySet<int> Gated => Busy.Where(kv => Retired.Contains(kv.Key)).Select(kv => kv.Value.RunId).ToHashSet();

    /// <summary>The queue with <paramref name="job"/> waiting last.</summary>
    public LoaderQueue Enqueue(Job job) => this with { Waiting = Waiting.Add(job) };

    /// <summary>
    /// Hires workers up to <see cref="Capacity"/> and gives each idle live worker the oldest waiting job whose run is
    /// not gated. Returns the workers hired and the jobs handed out.
    /// </summary>
    public (LoaderQueue State, IReadOnlyList<int> Hired, IReadOnlyList<(int Worker, Job Job)> Assigned) Assign()
    {
        var hired = Enumerable.Range(NextWorker, Math.Max(0, Capacity - Live.Count)).ToList();
        var state = this with { Live = Live.Union(hired), NextWorker = NextWorker + hired.Count };
        var gated = state.Gated;
        var waiting = state.Waiting;
        var busy = state.Busy;
        var assigned = new List<(int, Job)>();
        foreach (var worker in state.Live.Where(w => !busy.ContainsKey(w)))
        {
            var job = waiting.FirstOrDefault(j => !gated.Contains(j.RunId));
            if (job is null) break;
            waiting = waiting.Remove(job);
            busy = busy.Add(worker, job);
            assigned.Add((worker, job));
        }
        return (state with { Waiting = waiting, Busy = busy }, hired, assigned);
    }

    /// <summary>
    /// <paramref name="worker"/> finished its job. Returns whether it was retired: then it ends (its thread exits),
    /// and its run's other jobs may go on.
    /// </summary>
    public (LoaderQueue State, bool Ends) Finished(int worker)
    {
        var ends = Retired.Contains(worker);
        return (this with { Busy = Busy.Remove(worker), Retired = Retired.Remove(worker) }, ends);
    }

    /// <summary>
    /// <paramref name="worker"/>'s call has run too long (stalled, or past the time limit): it takes no more jobs, a
    /// fresh worker takes its place at the next <see cref="Assign"/>, and its run is gated until the call returns.
    /// </summary>
    public LoaderQueue Retire(int worker) => Busy.ContainsKey(worker) && Live.Contains(worker)
        ? this with { Live = Live.Remove(worker), Retired = Retired.Add(worker) }
        : this;
}
