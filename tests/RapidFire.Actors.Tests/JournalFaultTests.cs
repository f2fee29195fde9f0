using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>Journal faults injected with Akka.Persistence.TestKit's TestJournal, under a real checkpoint store.</summary>
[Collection(Checkpoints.TorchGlobalGeneratorCollection.Name)]
public sealed class JournalFaultTests : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private static readonly Akka.Configuration.Config TestJournalConfig =
        ConfigurationFactory.FromResource<TestJournal>("Akka.Persistence.TestKit.config.conf").WithFallback(RuntimeSettings.Reference);

    private readonly TinyData data = new();
    private readonly string checkpoints = Directory.CreateTempSubdirectory("rf-faults-").FullName;
    private readonly List<TrainingServices> services = [];

    public JournalFaultTests() : base(TestJournalConfig) { }

    void IDisposable.Dispose()
    {
        foreach (var s in services) s.Dispose();
        data.Dispose();
        Directory.Delete(checkpoints, recursive: true);
        Shutdown();
    }

    private static Cfg Config(long hidden) => new([
        new("hidden", hidden), new("dropout", 0.2), new("epochs", 2L), new("batch_size", 16L),
        new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = 0.01 } }),
    ]);

    private async Task<(FitCompleted Result, TrainingServices Services, List<RunJournaled> Journaled)> Fit(string prefix)
    {
        var journaled = new List<RunJournaled>();
        var probe = CreateTestProbe();
        Sys.EventStream.Subscribe(probe, typeof(RunJournaled));
        // A checkpoint per chunk: the restarted run resumes from the chunk before the failed write, so no chunk is trained twice.
        var settings = new RuntimeSettings(Chunks: 3, JournalIdPrefix: $"{prefix}/", SaveStrategy: "chunk");
        var s = new TrainingServices(() => new TinySpec(), data.Handle, settings,
            new TrainingServices.Storage(new LocalCheckpointStore(Path.Combine(checkpoints, prefix))));
        services.Add(s);
        var fit = Sys.ActorOf(FitActor.Props(s, DeviceSpec.Parse("cpu", () => 0)));
        var result = await fit.Ask<FitCompleted>(new RunFit([new RunDefinition(1, Config(8)), new RunDefinition(2, Config(12))]), TimeSpan.FromSeconds(60));
        while (probe.HasMessages) journaled.Add(await probe.ExpectMsgAsync<RunJournaled>());
        Sys.EventStream.Unsubscribe(probe);
        return (result, s, journaled);
    }

    [Fact]
    public async Task A_failed_journal_write_restarts_the_run_which_recovers_with_no_event_lost_or_doubled()
    {
        var (clean, cleanServices, _) = await Fit("clean");

        var journal = TestJournal.FromRef(Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(null));
        var failures = 0;
        await journal.OnWrite.FailIf(write =>
            write.PersistenceId == "faulty/run-1" && write.Payload is ChunkCompleted { Epoch: 0, Chunk: 1 } &&
            Interlocked.Exchange(ref failures, 1) == 0);
        var (faulty, faultyServices, journaled) = await Fit("faulty");
        await journal.OnWrite.Pass();

        Assert.Equal(1, failures);
        Assert.All(faulty.Runs, run => Assert.Equal(RunStatus.Completed, run.Status));
        var chunks = journaled.Where(j => j.RunId == 1).Select(j => j.Event).OfType<ChunkCompleted>().Select(c => (c.Epoch, c.Chunk)).ToList();
        Assert.Equal([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], chunks);    // each chunk journaled exactly once
        Assert.Equal(clean.Runs[0].ValidationHistory, faulty.Runs[0].ValidationHistory);
        foreach (var run in new[] { 1, 2 })
        {
            var expected = cleanServices.Models.CopyWeights(run)!;
            var actual = faultyServices.Models.CopyWeights(run)!;
            Assert.All(expected, kv => Assert.True(kv.Value.allclose(actual[kv.Key], rtol: 0, atol: 0), $"run {run} {kv.Key} differs"));
        }
    }
}
