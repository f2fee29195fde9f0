using System.Collections.Immutable;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// What the FitActor knows during a fit, as a pure immutable value: every run's latest state, the one task
/// in flight per run (a single pending slot, never a second map of decisions), and which device runs which task.
/// </summary>
public sealed record FitState
{
    /// <summary>A fit over <paramref name="devices"/> with no runs yet.</summary>
    public FitState(IReadOnlyList<string> devices) => Devices = devices;

    /// <summary>The devices, in scheduling order.</summary>
    public IReadOnlyList<string> Devices { get; }

    /// <summary>Every run's latest state.</summary>
    public ImmutableSortedDictionary<int, RunState> Runs { get; init; } = ImmutableSortedDictionary<int, RunState>.Empty;

    /// <summary>The task each run has in flight, until the run's state shows it done.</summary>
    public ImmutableDictionary<int, RunTask> InFlight { get; init; } = ImmutableDictionary<int, RunTask>.Empty;

    /// <summary>The task each busy device runs.</summary>
    public ImmutableDictionary<string, RunTask> Busy { get; init; } = ImmutableDictionary<string, RunTask>.Empty;

    /// <summary>Whether the fit is being cancelled: nothing new is scheduled.</summary>
    public bool Cancelling { get; init; }

    /// <summary>Whether every run has ended and every device is idle.</summary>
    public bool IsDone => Runs.Values.All(r => r.IsEnded) && Busy.IsEmpty;

    /// <summary>
    /// Takes a run's new state; its in-flight slot is freed once the state has moved past that task, or when the run
    /// <paramref name="recovered"/> from its journal while no device runs the task (its report was lost: it runs again).
    /// </summary>
    public FitState WithRun(RunState run, bool recovered = false)
    {
        var inFlight = InFlight.TryGetValue(run.RunId, out var task) &&
                       (run.IsEnded || run.NextTask != task || (recovered && !IsRunning(run.RunId)))
            ? InFlight.Remove(run.RunId)
            : InFlight;
        return this with { Runs = Runs.SetItem(run.RunId, run), InFlight = inFlight };
    }

    /// <summary>Whether a device runs a task of the run now.</summary>
    public bool IsRunning(int runId) => Busy.Values.Any(t => t.RunId == runId);

    /// <summary>A device finished its task.</summary>
    public FitState DeviceFreed(string deviceId) => this with { Busy = Busy.Remove(deviceId) };

    /// <summary>
    /// Gives free devices the next tasks (see <see cref="SchedulingPolicy"/>) and marks them in flight; nothing is
    /// scheduled while the fit is cancelling or a run has not started yet.
    /// </summary>
    public (FitState State, IReadOnlyList<Assignment> Assignments) Schedule()
    {
        // Until every run has started, the fairest order is unknown: the runs' first reports arrive in any order.
        if (Cancelling || Runs.Values.Any(r => r.Status == RunStatus.New)) return (this, []);
        var free = Devices.Where(d => !Busy.ContainsKey(d)).ToList();
        if (free.Count == 0) return (this, []);
        var assignments = SchedulingPolicy.Assign(Runs.Values.Select(r => r.Progress), free, InFlight.Keys.ToHashSet());
        var next = this with
        {
            Busy = Busy.SetItems(assignments.Select(a => KeyValuePair.Create(a.DeviceId, a.Task))),
            InFlight = InFlight.SetItems(assignments.Select(a => KeyValuePair.Create(a.Task.RunId, a.Task))),
        };
        return (next, assignments);
    }
}
