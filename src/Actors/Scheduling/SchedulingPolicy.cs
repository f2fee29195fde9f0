namespace RapidFire.Actors.Scheduling;

/// <summary>
/// Decides which run's next task goes to which free device. A plain function of a snapshot: it holds no state and
/// never calls back into the actors.
/// </summary>
/// <remarks>
/// Fairness keeps every config comparable early: the run with the fewest epochs done goes first, then the one with
/// the fewest chunks done in its current epoch, then the lowest run id. A run with a task in flight, or with no
/// task (closing an epoch, or ended), is passed over. Free devices are filled in the order given.
/// <para><b>Devices per run</b> (<see cref="DataParallel"/>). A run whose <c>num_devices</c> is a number k gets exactly
/// k devices: when fewer are free, it waits for them and the runs after it in the fairness order wait too, so that
/// it cannot starve. A run on <c>auto</c> gets its share of all the fit's devices among the
/// <c>competing</c> runs (those not ended and not held back, whether ready, training or waiting for an operation):
/// D / n devices, the first D mod n ready runs one more, never fewer than one and never more than are free. So runs
/// spread over the devices only when there are fewer runs than devices, and a run that is about to report back keeps
/// its claim on a device instead of losing it to a run spreading out.</para>
/// <para><b>Nodes</b> (a cluster). A task's devices are on one node (its shards exchange gradients in host memory), and
/// a run goes back to the node where its state rests when a device is free there: its state then need not move through
/// the checkpoint store. Locality only picks among free devices; the order of the runs stays the fairness order.</para>
/// </remarks>
public static class SchedulingPolicy
{
    /// <summary>The assignments for <paramref name="freeDevices"/>; fewer when fewer runs have a task ready.</summary>
    /// <param name="runs">Every run's progress.</param>
    /// <param name="freeDevices">The idle devices, in the order they are filled.</param>
    /// <param name="busyRuns">Runs passed over: a task in flight, an operation pending, held by a pruning rule.</param>
    /// <param name="totalDevices">All the fit's devices, busy or free.</param>
    /// <param name="competing">The runs that want devices now or soon: not ended and not held.</param>
    /// <param name="nodeOf">The node of each device (null: one node); a task's devices are all on one node.</param>
    /// <param name="home">Where each run's state rests (the node of its last task): a run goes back there when that
    /// node has a free device, so its state need not move; elsewhere when not (fairness first).</param>
    /// <param name="pinned">Runs that may train on this node only (their state is in its memory and nowhere else yet):
    /// passed over while it has no free device for them.</param>
    public static IReadOnlyList<Assignment> Assign(IEnumerable<RunProgress> runs, IReadOnlyList<string> freeDevices,
        IReadOnlySet<int> busyRuns, int totalDevices, int competing, Func<string, string>? nodeOf = null,
        IReadOnlyDictionary<int, string>? home = null, IReadOnlyDictionary<int, string>? pinned = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalDevices, freeDevices.Count);
        nodeOf ??= _ => "";
        var ready = runs
            .Where(r => r.NextTask is not null && !busyRuns.Contains(r.RunId))
            .OrderBy(r => r.EpochsDone)
            .ThenBy(r => r.ChunksDone)
            .ThenBy(r => r.RunId)
            .ToList();
        var share = totalDevices / Math.Max(1, competing);
        var extra = totalDevices % Math.Max(1, competing);
        var free = freeDevices.ToList();
        var assignments = new List<Assignment>();
        for (var rank = 0; rank < ready.Count && free.Count > 0; rank++)
        {
            var run = ready[rank];
            var byNode = free.GroupBy(nodeOf).ToDictionary(g => g.Key, g => g.ToList());
            var preferred = home?.GetValueOrDefault(run.RunId);
            if (pinned?.GetValueOrDefault(run.RunId) is { } only)
            {
                if (!byNode.ContainsKey(only) || byNode[only].Count < (run.NumDevices ?? 1)) continue;
                preferred = only;
            }
            List<string>? node;
            int take;
            if (run.NumDevices is { } fixedCount)
            {
                // it waits for its devices on one node, and nobody overtakes it
                node = preferred is not null && byNode.TryGetValue(preferred, out var there) && there.Count >= fixedCount ? there
                    : byNode.Values.FirstOrDefault(d => d.Count >= fixedCount);
                if (node is null) break;
                take = fixedCount;
            }
            else
            {
                node = preferred is not null && byNode.TryGetValue(preferred, out var there) ? there : byNode[nodeOf(free[0])];
                take = Math.Clamp(share + (rank < extra ? 1 : 0), 1, node.Count);
            }
            var devices = node.Take(take).ToList();
            assignments.Add(new Assignment(devices[0], run.NextTask!, devices.Count == 1 ? null : devices.Skip(1).ToList()));
            free.RemoveAll(devices.Contains);
        }
        return assignments;
    }
}
