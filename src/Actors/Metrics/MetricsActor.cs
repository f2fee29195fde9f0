using Akka.Actor;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;
using static RapidFire.Actors.Metrics.MetricsProtocol;

namespace RapidFire.Actors.Metrics;

/// <summary>
/// Collects the minibatch metrics of every run, builds the epoch metrics when a run closes an epoch, and asks
/// <c>HasConverged</c> after each validation. Replies to the RunActor that asked; publishes what it records on the
/// event stream for observers (the CLI's table, the metric files, the dashboard).
/// </summary>
public sealed class MetricsActor : ReceiveActor
{
    private readonly Dictionary<(int RunId, Mode Mode, int Epoch), EpochAccumulator> open = [];
    private readonly Dictionary<int, List<IReadOnlyDictionary<string, double>>> validationHistory = [];

    /// <summary>Props of the metrics actor.</summary>
    public static Props Props(TrainingServices services) => Akka.Actor.Props.Create(() => new MetricsActor(services));

    /// <summary>Creates the actor.</summary>
    public MetricsActor(TrainingServices services)
    {
        Receive<MinibatchRecorded>(minibatch =>
        {
            var key = (minibatch.RunId, minibatch.Mode, minibatch.Epoch);
            if (!open.TryGetValue(key, out var epoch)) open[key] = epoch = new EpochAccumulator();
            epoch.Add(minibatch);
            Context.System.EventStream.Publish(minibatch);
        });

        Receive<CloseEpoch>(close =>
        {
            open.Remove((close.RunId, close.Mode, close.Epoch), out var epoch);
            try
            {
                var spec = services.Specs.Get(close.RunId, close.Config, close.Mode);
                var metrics = (epoch ?? new EpochAccumulator()).Close(spec, close.Config, close.Mode);
                var converged = close.Mode == Mode.Validation && HasConverged(spec, close, metrics);
                Context.System.EventStream.Publish(new EpochRecorded(close.RunId, close.Mode, close.Epoch, metrics));
                Sender.Tell(new CloseEpochMetrics(close.Mode, close.Epoch, metrics, converged));
            }
            catch (Exception e)
            {
                Sender.Tell(new FailRun(RunFailureException.Of(e) with { Mode = close.Mode.ToName(), Epoch = close.Epoch + 1 }));
            }
        });

        Receive<ForgetRun>(forget =>
        {
            validationHistory.Remove(forget.RunId);
            foreach (var key in open.Keys.Where(k => k.RunId == forget.RunId).ToList()) open.Remove(key);
        });
    }

    private bool HasConverged(MLSpec spec, CloseEpoch close, IReadOnlyDictionary<string, double> metrics)
    {
        if (!validationHistory.TryGetValue(close.RunId, out var history)) validationHistory[close.RunId] = history = [];
        history.Add(metrics);
        var table = MetricTables.FromRows(history);
        return SpecCall.Run("HasConverged", () => spec.HasConverged(table, close.Epoch + 1, close.Config));
    }
}
