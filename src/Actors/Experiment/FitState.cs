using System.Collections.Immutable;
using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;

namespace RapidFire.Actors.Experiment;

/// <summary>An accepted IC operation waiting to take effect (or taking it): its id, the operation, a clone's new run.</summary>
public sealed record PendingControl(int OpId, ControlOp Op, ExperimentProtocol.RunDefinition? NewRun);

/// <summary>
/// What the FitActor knows during a fit, as a pure immutable value: every run's latest state, the one task
/// in flight per run (a single pending slot, never a second map of decisions), and which device runs which task.
/// </summary>
public sealed partial record FitState
{
    /// <summary>A fit over <paramref name="devices"/> (of one node, unnamed) with no runs yet.</summary>
    public FitState(IReadOnlyList<string> devices, bool locality = true)
    {
        Locality = locality;
        Devices = devices;
        Nodes = devices.ToImmutableDictionary(d => d, _ => "");
    }

    /// <summary>The devices of the pool, in scheduling order.</summary>
    public IReadOnlyList<string> Devices { get; private init; }

    /// <summary>The node of each device of the pool.</summary>
    public ImmutableDictionary<string, string> Nodes { get; private init; }

    /// <summary>Whether runs go back to the node where their state rests (see <see cref="RuntimeSettings.Locality"/>).</summary>
    public bool Locality { get; }

    /// <summary>The node where each run's state rests: the node of its last task.</summary>
    public ImmutableDictionary<int, string> Homes { get; init; } = ImmutableDictionary<int, string>.Empty;

    /// <summary>Node <paramref name="node"/> brings <paramref name="devices"/> to the pool; they are used from now on.</summary>
    public FitState Joined(string node, IEnumerable<string> devices)
    {
        var added = devices.Where(d => !Nodes.ContainsKey(d)).ToList();
        return this with { Devices = [.. Devices, .. added], Nodes = Nodes.SetItems(added.Select(d => KeyValuePair.Create(d, node))) };
    }

    /// <summary>
    /// Node <paramref name="node"/> left (it died, or was removed): its devices leave the pool, and the tasks they ran
    /// are in flight no more, so they are scheduled again (each run restarts its task from its newest checkpoint).
    /// </summary>
    public FitState Left(string node)
    {
        var gone = Nodes.Where(kv => kv.Value == node).Select(kv => kv.Key).ToHashSet();
        var lost = Busy.Where(kv => gone.Contains(kv.Key)).Select(kv => kv.Value).ToHashSet();
        return this with
        {
            Devices = Devices.Where(d => !gone.Contains(d)).ToList(),
            Nodes = Nodes.RemoveRange(gone),
            Busy = Busy.RemoveRange(Busy.Where(kv => lost.Contains(kv.Value)).Select(kv => kv.Key).ToList()),
            InFlight = InFlight.RemoveRange(InFlight.Where(kv => lost.Contains(kv.Value)).Select(kv => kv.Key).ToList()),
            Homes = Homes.RemoveRange(Homes.Where(kv => kv.Value == node).Select(kv => kv.Key).ToList()),
        };
    }

    /// <summary>Every run's latest state: journaled, or decided ahead of its journal (see <see cref="Undurable"/>).</summary>
    public ImmutableSortedDictionary<int, RunState> Runs { get; init; } = ImmutableSortedDictionary<int, RunState>.Empty;

    /// <summary>
    /// The runs whose latest state is ahead of their journal (see <see cref="RunAhead"/>): it is being journaled, or
    /// waits for a checkpoint being written. Their next task may start, on their home node only (their state rests
    /// there); their IC operations wait, and the fit does not end, until the journal has caught up.
    /// </summary>
    public ImmutableHashSet<int> Undurable { get; init; } = [];

    /// <summary>The task each run has in flight, until the run's state shows it done.</summary>
    public ImmutableDictionary<int, RunTask> InFlight { get; init; } = ImmutableDictionary<int, RunTask>.Empty;

    /// <summary>The task each busy device runs (a task on several devices is under each of them).</summary>
    public ImmutableDictionary<string, RunTask> Busy { get; init; } = ImmutableDictionary<string, RunTask>.Empty;

    /// <summary>Whether the fit is being cancelled: nothing new is scheduled.</summary>
    public bool Cancelling { get; init; }

    /// <summary>
    /// The IC operations waiting for their run's next chunk boundary, in the order asked: the run's one pending slot.
    /// A run with operations waiting is not given another task.
    /// </summary>
    public ImmutableDictionary<int, ImmutableList<PendingControl>> Pending { get; init; } = ImmutableDictionary<int, ImmutableList<PendingControl>>.Empty;

    /// <summary>The operations handed to their runs and not yet journaled by them, by operation id.</summary>
    public ImmutableDictionary<int, PendingControl> Applying { get; init; } = ImmutableDictionary<int, PendingControl>.Empty;

    /// <summary>The tasks retried after a transient native fault: each is retried once (<see cref="RetryOnce"/>).</summary>
    public ImmutableHashSet<RunTask> Retried { get; init; } = [];

    /// <summary>
    /// Whether <paramref name="task"/>, which failed with a transient native fault, is retried (the first time it
    /// fails) or fails its run (it failed again after a retry), and the state that remembers the retry.
    /// </summary>
    public (FitState State, bool Retry) RetryOnce(RunTask task) =>
        Retried.Contains(task) ? (this, false) : (this with { Retried = Retried.Add(task) }, true);

    /// <summary>The tasks in flight whose minibatches wait for a stalled MLSpec call (see <see cref="Data.DataLoaderActor"/>).</summary>
    public ImmutableHashSet<RunTask> Stalled { get; init; } = [];

    /// <summary><paramref name="task"/> waits for a stalled MLSpec call (ignored once it is no longer in flight).</summary>
    public FitState Stall(RunTask task) =>
        InFlight.GetValueOrDefault(task.RunId) == task ? this with { Stalled = Stalled.Add(task) } : this;

    /// <summary>
    /// The devices to cancel so that the operations waiting on <paramref name="runId"/> take effect: those of its task
    /// in flight when that task is stalled and a stop or a delete waits (it would never reach its chunk boundary).
    /// Otherwise none: an operation waits for the boundary, and the chunk's work is kept.
    /// </summary>
    public IReadOnlyList<string> ToCancel(int runId) =>
        InFlight.TryGetValue(runId, out var task) && Stalled.Contains(task) &&
        Pending.GetValueOrDefault(runId, []).Any(p => p.Op.Kind is ControlKind.Stop or ControlKind.Delete)
            ? Busy.Where(kv => kv.Value == task).Select(kv => kv.Key).ToList()
            : [];

    /// <summary>
    /// A task was cancelled while the fit goes on (a stalled run is stopped or deleted): its chunk is abandoned, and
    /// the run stands at its last chunk boundary, where its operations take effect.
    /// </summary>
    public FitState Abandoned(RunTask task) => this with
    {
        InFlight = InFlight.GetValueOrDefault(task.RunId) == task ? InFlight.Remove(task.RunId) : InFlight,
        Stalled = Stalled.Remove(task),
    };

    /// <summary>Runs a pruning rule holds back (a successive-halving rung waits for the slower runs).</summary>
    public ImmutableHashSet<int> Held { get; init; } = [];

    /// <summary>Whether every run has ended, every device is idle and no IC operation is left to carry out.</summary>
    public bool IsDone => Runs.Values.All(r => r.IsEnded) && Undurable.IsEmpty && Busy.IsEmpty && Pending.IsEmpty && Applying.IsEmpty;

    /// <summary>The operations waiting for <paramref name="runId"/>, and those it is carrying out, in order.</summary>
    public IReadOnlyList<ControlOp> OpsOn(int runId) =>
        [.. Applying.Values.Where(p => p.Op.RunId == runId).OrderBy(p => p.OpId).Select(p => p.Op),
         .. Pending.GetValueOrDefault(runId, []).Select(p => p.Op)];

    /// <summary>Queues an accepted operation on its run.</summary>
    public FitState Queue(PendingControl control) =>
        this with { Pending = Pending.SetItem(control.Op.RunId, Pending.GetValueOrDefault(control.Op.RunId, []).Add(control)) };

    /// <summary>
    /// Whether operations on <paramref name="runId"/> take effect now: the run has started (or recovered), has no
    /// task in flight and its journal holds its state, so it stands at a durable chunk boundary.
    /// </summary>
    public bool AtBoundary(int runId) =>
        Runs.TryGetValue(runId, out var run) && run.Status != RunStatus.New && !InFlight.ContainsKey(runId) && !Undurable.Contains(runId);

    /// <summary>Takes the operations waiting on <paramref name="runId"/> when it stands at a chunk boundary (none otherwise); they move to <see cref="Applying"/>.</summary>
    public (FitState State, IReadOnlyList<PendingControl> Ready) TakeReady(int runId)
    {
        if (!AtBoundary(runId) || !Pending.TryGetValue(runId, out var ready)) return (this, []);
        return (this with { Pending = Pending.Remove(runId), Applying = Applying.SetItems(ready.Select(p => KeyValuePair.Create(p.OpId, p))) }, ready);
    }

    /// <summary>An operation was carried out (or dropped).</summary>
    public FitState Resolved(int opId) => this with { Applying = Applying.Remove(opId) };

    /// <summary>
    /// Takes a run's new state, journaled unless <paramref name="durable"/> is false (decided ahead of its journal);
    /// its in-flight slot is freed once the state has moved past that task, or when the run
    /// <paramref name="recovered"/> from its journal while no device runs the task (its report was lost: it runs again).
    /// </summary>
    public FitState WithRun(RunState run, bool recovered = false, bool durable = true)
    {
        var inFlight = InFlight.TryGetValue(run.RunId, out var task) &&
                       (run.IsEnded || run.NextTask != task || (recovered && !IsRunning(run.RunId)))
            ? InFlight.Remove(run.RunId)
            : InFlight;
        return this with
        {
            Runs = Runs.SetItem(run.RunId, run),
            InFlight = inFlight,
            Undurable = durable ? Undurable.Remove(run.RunId) : Undurable.Add(run.RunId),
        };
    }

    /// <summary>Whether a device runs a task of the run now.</summary>
    public bool IsRunning(int runId) => Busy.Values.Any(t => t.RunId == runId);

    /// <summary>A device finished its task: it and the devices that trained the task's other shards are free.</summary>
    public FitState DeviceFreed(string deviceId) => Busy.TryGetValue(deviceId, out var task)
        ? this with { Busy = Busy.RemoveRange(Busy.Where(kv => kv.Value == task).Select(kv => kv.Key).ToList()), Stalled = Stalled.Remove(task) }
        : this;

    /// <summary>
    /// Gives free devices the next tasks (see <see cref="SchedulingPolicy"/>) and marks them in flight; nothing is
    /// scheduled while the fit is cancelling or a run has not started yet. Runs with IC operations waiting, or held by
    /// a pruning rule, are passed over.
    /// </summary>
    public (FitState State, IReadOnlyList<Assignment> Assignments) Schedule()
    {
        // Until every run has started, the fairest order is unknown: the runs' first reports arrive in any order.
        if (Cancelling || Runs.Values.Any(r => r.Status == RunStatus.New)) return (this, []);
        var free = Devices.Where(d => !Busy.ContainsKey(d)).ToList();
        if (free.Count == 0) return (this, []);
        // A run whose operation is on its way to its journal waits for it: a stop must not meet a chunk in progress. A
        // run a device still runs (a task decided ahead of a checkpoint that was then lost) waits for that device.
        var waiting = InFlight.Keys.Concat(Pending.Keys).Concat(Applying.Values.Select(p => p.Op.RunId)).Concat(Held)
            .Concat(Busy.Values.Select(t => t.RunId)).ToHashSet();
        var competing = Runs.Values.Count(r => !r.IsEnded && !Held.Contains(r.RunId));
        var pinned = Undurable.Where(Homes.ContainsKey).ToDictionary(r => r, r => Homes[r]);
        var assignments = SchedulingPolicy.Assign(Runs.Values.Select(r => r.Progress), free, waiting, Devices.Count, competing,
            d => Nodes.GetValueOrDefault(d, ""), Locality ? Homes : null, pinned);
        var next = this with
        {
            Homes = Homes.SetItems(assignments.Select(a => KeyValuePair.Create(a.Task.RunId, Nodes.GetValueOrDefault(a.DeviceId, "")))),
            Busy = Busy.SetItems(assignments.SelectMany(a => a.Devices.Select(d => KeyValuePair.Create(d, a.Task)))),
            InFlight = InFlight.SetItems(assignments.Select(a => KeyValuePair.Create(a.Task.RunId, a.Task))),
        };
        return (next, assignments);
    }
}
