using RapidFire.Actors.Runs;
using RapidFire.Spec.Configs;

namespace RapidFire.Actors.Scheduling;

/// <summary>Pruning decisions over run states (see <see cref="Pruner.Decide(PruningRule, IReadOnlyList{PruningSnapshot}, int)"/>).</summary>
public static partial class Pruner
{
    /// <summary>
    /// The decision over <paramref name="runs"/>: each started run's metric after every epoch (its validation metric
    /// when it validates, else its train metric) or every chunk (the chunk's train metric); a user-resumed run is exempt;
    /// the bound is the largest <c>epochs</c> (times chunks per epoch, for the chunk resource).
    /// </summary>
    public static PruningDecision Decide(PruningRule rule, IEnumerable<RunState> runs)
    {
        var started = runs.Where(r => r.Status != RunStatus.New).ToList();
        var snapshots = started.Select(r => new PruningSnapshot(r.RunId, !r.IsEnded, r.ResumedByUser, Values(rule, r))).ToList();
        var bound = started.Select(r => rule.Resource == PruningResource.Chunks ? r.MaxEpochs * r.ChunksPerEpoch : r.MaxEpochs).DefaultIfEmpty(1).Max();
        return Decide(rule, snapshots, Math.Max(1, bound));
    }

    private static List<double> Values(PruningRule rule, RunState run) => Values(run, rule.Resource, rule.Metric);

    /// <summary>
    /// <paramref name="run"/>'s <paramref name="metric"/> after each unit: each epoch's (validation when it validates,
    /// else train) or each chunk's (train); NaN where the metric is missing. Pruning and PBT rank runs by it.
    /// </summary>
    internal static List<double> Values(RunState run, PruningResource resource, string metric)
    {
        var history = resource == PruningResource.Chunks ? run.ChunkMetrics
            : run.HasValidation ? run.ValidationHistory : run.TrainHistory;
        return history.Select(h => h.TryGetValue(metric, out var value) ? value : double.NaN).ToList();
    }
}
