using Akka.Actor;
using RapidFire.Actors.Control;
using RapidFire.Actors.Data;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;

namespace RapidFire.Host;

/// <summary>
/// Where an experiment's runtime events go: its files (metric files, IC log, experiment.log, the fit's manifest), its
/// <see cref="Experiment.Progress"/> event, and the latest state of every run (what <see cref="Experiment.RunsAsync"/>
/// shows between fits). An actor on the experiment's ActorSystem receives them from its event stream.
/// </summary>
internal sealed class ExperimentOutput(ExperimentFiles files, ExperimentJournal journal)
{
    private static readonly Type[] Events =
    [
        typeof(RapidFire.Spec.Progress.ProgressUpdate), typeof(RunUpdated), typeof(RunJournaled), typeof(MinibatchRecord),
        typeof(MetricsProtocol.EpochRecorded), typeof(GpuProtocol.TaskFinished), typeof(RunWarning),
        typeof(ExperimentProtocol.JournalUnavailable), typeof(ControlRecord), typeof(RunPruned), typeof(FitProtocol.WorkerChanged),
        typeof(DataLoaderProtocol.PrepCacheNoted), typeof(ExperimentProtocol.FitDefined),
    ];

    private readonly ExperimentFiles files = files;
    private readonly ExperimentJournal journal = journal;
    private readonly Dictionary<int, RunState> lastRuns = [];
    private readonly TaskCompletionSource<string> journalFailure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IActorRef bridge = ActorRefs.Nobody;

    /// <summary>See <see cref="Experiment.Progress"/>.</summary>
    public event Action<ExperimentEvent>? Progress;

    /// <summary>Completes with the reason when the journal reports that it cannot be used.</summary>
    public Task<string> JournalFailure => journalFailure.Task;

    /// <summary>Starts receiving <paramref name="system"/>'s runtime events.</summary>
    public void Attach(ActorSystem system)
    {
        bridge = system.ActorOf(Props.Create(() => new Bridge(this)), "events");
        foreach (var type in Events) system.EventStream.Subscribe(bridge, type);
    }

    /// <summary>Returns once every event published before the call has been handled.</summary>
    public Task FlushAsync() => bridge.Ask<Bridge.Flushed>(new Bridge.Flush(), TimeSpan.FromSeconds(30));

    /// <summary>Every run's latest state, by id.</summary>
    public IReadOnlyList<RunState> LastRuns()
    {
        lock (lastRuns) return [.. lastRuns.Values.OrderBy(r => r.RunId)];
    }

    /// <summary>Records <paramref name="run"/> as its run's latest state (a run read back from the journal).</summary>
    public void Remember(RunState run)
    {
        lock (lastRuns) lastRuns[run.RunId] = run;
    }

    private void Publish(ExperimentEvent e)
    {
        if (e is ControlLogged { Record: var record }) files.Control(record);
        // the epochs' metrics are in the metric files
        if (e is not EpochDone && LogLines.Of(e, full: true) is { } line) files.Log(line);
        if (e is RunChanged { Run: var latest }) Remember(latest);
        Progress?.Invoke(e);
    }

    private sealed class Bridge : ReceiveActor
    {
        public sealed record Flush;

        public sealed record Flushed;

        public Bridge(ExperimentOutput output)
        {
            Receive<Flush>(_ => Sender.Tell(new Flushed()));
            Receive<RunUpdated>(e => output.Publish(new RunChanged(e.State, e.Recovered)));
            Receive<RunJournaled>(e =>
            {
                output.files.Apply(e.RunId, e.Event);
                if (e.Event is ChunkCompleted chunk) output.Publish(new ChunkRecorded(e.RunId, chunk.Epoch, chunk.Chunk, chunk.Records));
            });
            Receive<MinibatchRecord>(e => output.Publish(new MinibatchDone(e)));
            Receive<MetricsProtocol.EpochRecorded>(e =>
            {
                output.Publish(new EpochDone(e));
                output.journal.CheckpointSoon();
            });
            Receive<GpuProtocol.TaskFinished>(e => output.Publish(new TaskDone(e)));
            Receive<RunWarning>(e => output.Publish(new Warning(e.Message)));
            Receive<FitProtocol.WorkerChanged>(e => output.Publish(new ClusterNotice(e.Worker, e.Message)));
            Receive<DataLoaderProtocol.PrepCacheNoted>(e => output.Publish(new CacheNotice(e.Message)));
            Receive<ControlRecord>(e => output.Publish(new ControlLogged(e)));
            Receive<RunPruned>(e => output.Publish(new RunPrunedBy(e.RunId, e.Reason)));
            Receive<RapidFire.Spec.Progress.ProgressUpdate>(e => output.Publish(new ProgressReported(e)));
            Receive<ExperimentProtocol.JournalUnavailable>(e => output.journalFailure.TrySetResult(e.Reason));
            Receive<ExperimentProtocol.FitDefined>(e => output.files.WriteManifest(e.Manifest));
        }
    }
}
