using Akka.Actor;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using static RapidFire.Actors.Metrics.MetricsProtocol;

namespace RapidFire.Actors.Metrics;

/// <summary>
/// Runs the user's epoch-level metric code off the RunActors: builds an epoch's metrics from the minibatch records
/// a run sends (<see cref="EpochMetrics"/>), and asks <c>HasConverged</c> after each validation. The records and the
/// validation history come with each request, from the run's journaled state; the actor only remembers which metrics
/// it has warned about (a non-tensor metric the default aggregation drops: once per key and fit).
/// </summary>
public sealed class MetricsActor : ReceiveActor
{
    /// <summary>Props of the metrics actor.</summary>
    public static Props Props(TrainingServices services) => Akka.Actor.Props.Create(() => new MetricsActor(services));

    /// <summary>Creates the actor.</summary>
    public MetricsActor(TrainingServices services)
    {
        var warned = new HashSet<string>(StringComparer.Ordinal);
        Receive<CloseEpoch>(close =>
        {
            try
            {
                var spec = services.Specs.Get(close.RunId, close.Config, close.Mode);
                var metrics = EpochMetrics.Close(close.Records, spec, close.Config, close.Mode);
                foreach (var key in EpochMetrics.DroppedByDefault(close.Records, spec).Where(warned.Add))
                    Context.System.EventStream.Publish(new RunWarning(close.RunId,
                        $"run {close.RunId}: ComputeMetrics returns '{key}' as a value that is not a tensor; the default AggregateMetrics " +
                        "sums tensor metrics only, so it is dropped from the epoch metrics: aggregate it in your AggregateMetrics"));
                var converged = close.Mode == Mode.Validation && SpecCall.Run("HasConverged", () =>
                    spec.HasConverged(MetricTables.FromRows([.. close.ValidationHistory, metrics]), close.Epoch + 1, close.Config));
                Context.System.EventStream.Publish(new EpochRecorded(close.RunId, close.Mode, close.Epoch, metrics));
                Sender.Tell(new CloseEpochMetrics(close.Mode, close.Epoch, metrics, converged));
            }
            catch (Exception e)
            {
                Sender.Tell(new FailRun(RunFailureException.Of(e) with { Mode = close.Mode.ToName(), Epoch = close.Epoch + 1 }));
            }
        });
    }
}
