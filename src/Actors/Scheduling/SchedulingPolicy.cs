namespace RapidFire.Actors.Scheduling;

/// <summary>
/// Decides which run's next task goes to which free device. A plain function of a snapshot: it holds no state and
/// never calls back into the actors.
/// </summary>
/// <remarks>
/// Fairness keeps every config comparable early: the run with the fewest epochs done goes first, then the one with
/// the fewest chunks done in its current epoch, then the lowest run id. A run with a task in flight, or with no
/// task (closing an epoch, or ended), is passed over. Free devices are filled in the order given.
/// </remarks>
public static class SchedulingPolicy
{
    /// <summary>The assignments for <paramref name="freeDevices"/>; fewer when fewer runs have a task ready.</summary>
    public static IReadOnlyList<Assignment> Assign(IEnumerable<RunProgress> runs, IReadOnlyList<string> freeDevices,
        IReadOnlySet<int> busyRuns)
    {
        var ready = runs
            .Where(r => r.NextTask is not null && !busyRuns.Contains(r.RunId))
            .OrderBy(r => r.EpochsDone)
            .ThenBy(r => r.ChunksDone)
            .ThenBy(r => r.RunId)
            .Take(freeDevices.Count)
            .ToList();
        return ready.Select((run, i) => new Assignment(freeDevices[i], run.NextTask!)).ToList();
    }
}
