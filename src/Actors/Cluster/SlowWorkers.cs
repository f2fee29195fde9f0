namespace RapidFire.Actors.Cluster;

/// <summary>
/// Spots a slow worker node from the chunks its devices train: a run's minibatches taking several times longer on one
/// node than on the others (a throttled GPU, a node busy with something else). A plain class fed by the fit; it
/// compares each run with itself, since runs differ in size.
/// </summary>
/// <param name="factor">How many times the run's median time elsewhere makes a node slow.</param>
public sealed class SlowWorkers(double factor = 3.0)
{
    private readonly Dictionary<int, List<(string Worker, double Seconds)>> samples = [];
    private readonly HashSet<string> reported = [];

    /// <summary>
    /// Takes a chunk run <paramref name="runId"/> trained on <paramref name="worker"/> at <paramref name="secondsPerMinibatch"/>
    /// (device time, not time waiting for data). Returns a report when this makes the worker slow (once, until it
    /// is fast again), else null.
    /// </summary>
    public string? Observe(string worker, int runId, double secondsPerMinibatch)
    {
        if (!double.IsFinite(secondsPerMinibatch) || secondsPerMinibatch <= 0) return null;
        if (!samples.TryGetValue(runId, out var run)) samples[runId] = run = [];
        run.Add((worker, secondsPerMinibatch));
        var elsewhere = run.Where(s => s.Worker != worker).Select(s => s.Seconds).Order().ToList();
        if (elsewhere.Count == 0) return null;
        var median = elsewhere.Count % 2 == 1 ? elsewhere[elsewhere.Count / 2] : (elsewhere[elsewhere.Count / 2 - 1] + elsewhere[elsewhere.Count / 2]) / 2;
        if (secondsPerMinibatch > factor * median)
            return reported.Add(worker)
                ? $"worker {worker} is slow: run {runId}'s minibatches take {secondsPerMinibatch * 1000:0.#} ms there, " +
                  $"{median * 1000:0.#} ms on the other workers"
                : null;
        if (secondsPerMinibatch < factor / 2 * median) reported.Remove(worker);
        return null;
    }
}
