using RapidFire.Spec;

namespace RapidFire.Actors.Metrics;

/// <summary>Messages of the MetricsActor, and the metric event it publishes on the event stream.</summary>
public static class MetricsProtocol
{
    /// <summary>
    /// Close an epoch's metrics of one partition from its minibatch records; for validation, also ask
    /// <c>HasConverged</c> with the run's earlier validation rows. Answered with a <c>CloseEpochMetrics</c> or a
    /// <c>FailRun</c> to the sender.
    /// </summary>
    public sealed record CloseEpoch(int RunId, Config Config, Mode Mode, int Epoch, IReadOnlyList<MinibatchRecord> Records,
        IReadOnlyList<IReadOnlyDictionary<string, double>> ValidationHistory);

    /// <summary>Published when an epoch's metrics of one partition are closed.</summary>
    public sealed record EpochRecorded(int RunId, Mode Mode, int Epoch, IReadOnlyDictionary<string, double> Metrics);
}
