using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;

namespace RapidFire.Actors.Persistence;

/// <summary>
/// The journal's schema: every journaled type with its manifest (name and version). A journal written by one
/// release must be read by the next: a manifest is never reused for another shape; a changed event is a new record
/// with a new manifest, and the old one stays readable.
/// </summary>
public static class EventSchema
{
    private static readonly (string Manifest, Type Type)[] Entries =
    [
        ("experiment-created.v1", typeof(ExperimentCreated)),
        ("fit-started.v1", typeof(FitStarted)),
        ("runs-added.v1", typeof(RunsAdded)),
        ("fit-ended.v1", typeof(FitEnded)),
        ("experiment-ended.v1", typeof(ExperimentEnded)),
        ("control-requested.v1", typeof(ControlRequested)),
        ("control-resolved.v1", typeof(ControlResolved)),
        ("run-started.v1", typeof(RunStarted)),
        ("chunk-completed.v1", typeof(ChunkCompleted)),
        ("validation-completed.v1", typeof(ValidationCompleted)),
        ("epoch-metrics-recorded.v1", typeof(EpochMetricsRecorded)),
        ("epoch-completed.v1", typeof(EpochCompleted)),
        ("run-ended.v1", typeof(RunEnded)),
        ("restored-from-checkpoint.v1", typeof(RestoredFromCheckpoint)),
        ("run-resumed.v1", typeof(RunResumed)),
        ("run-warm-started.v1", typeof(RunWarmStarted)),
        ("run-state.v1", typeof(RunSnapshot)),
    ];

    private static readonly Dictionary<string, Type> ByManifest = Entries.ToDictionary(e => e.Manifest, e => e.Type);
    private static readonly Dictionary<Type, string> ByType = Entries.ToDictionary(e => e.Type, e => e.Manifest);

    /// <summary>Every journaled type, by manifest.</summary>
    public static IReadOnlyDictionary<string, Type> Types => ByManifest;

    /// <summary>The manifest of a journaled type.</summary>
    public static string ManifestOf(Type type) => ByType.TryGetValue(type, out var manifest)
        ? manifest
        : throw new ArgumentException($"{type.FullName} is not in the journal schema (Persistence/EventSchema.cs)", nameof(type));

    /// <summary>The type of a manifest; an unknown one names itself (a journal from a newer release?).</summary>
    public static Type TypeOf(string manifest) => ByManifest.TryGetValue(manifest, out var type)
        ? type
        : throw new InvalidOperationException($"the journal holds an event of unknown kind '{manifest}': was it written by a newer RapidFire?");
}
