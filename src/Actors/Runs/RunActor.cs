using Akka.Actor;
using RapidFire.Actors.Metrics;
using RapidFire.Spec;

namespace RapidFire.Actors.Runs;

/// <summary>
/// One run (one leaf config): holds its <see cref="RunState"/>, applies what devices and the MetricsActor report,
/// asks the MetricsActor to close each epoch's metrics, and tells the experiment every change.
/// </summary>
/// <remarks>
/// All decisions are <see cref="RunState.Decide"/>'s; this actor applies the events and carries out their
/// effects: closing the train metrics after an epoch's last chunk, closing the validation metrics (and asking
/// <c>HasConverged</c>) after its validation pass.
/// </remarks>
public sealed class RunActor : ReceiveActor
{
    private readonly IActorRef experiment;
    private readonly IActorRef metrics;
    private RunState state;

    /// <summary>Props of the actor of run <paramref name="runId"/>.</summary>
    public static Props Props(int runId, Config config, IActorRef experiment, IActorRef metrics) =>
        Akka.Actor.Props.Create(() => new RunActor(runId, config, experiment, metrics));

    /// <summary>Creates the actor.</summary>
    public RunActor(int runId, Config config, IActorRef experiment, IActorRef metrics)
    {
        this.experiment = experiment;
        this.metrics = metrics;
        state = new RunState(runId, config);
        Receive<IRunCommand>(Handle);
    }

    private void Handle(IRunCommand command)
    {
        var events = state.Decide(command);
        if (events.Count == 0) return;
        foreach (var e in events)
        {
            state = state.Apply(e);
            CarryOut(e);
        }
        experiment.Tell(new RunUpdated(state));
    }

    private void CarryOut(IRunEvent e)
    {
        switch (e)
        {
            case ChunkCompleted { } chunk when state.ChunksDone == state.ChunksPerEpoch:
                metrics.Tell(new MetricsProtocol.CloseEpoch(state.RunId, state.Config, Mode.Train, chunk.Epoch, state.TrainRecords, state.ValidationHistory));
                break;
            case ValidationCompleted validated:
                metrics.Tell(new MetricsProtocol.CloseEpoch(state.RunId, state.Config, Mode.Validation, validated.Epoch, state.ValidationRecords, state.ValidationHistory));
                break;
        }
    }
}
