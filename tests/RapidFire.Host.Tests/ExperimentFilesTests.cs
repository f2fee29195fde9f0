using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using RapidFire.Spec.Metrics;

namespace RapidFire.Host.Tests;

/// <summary>The metric files grow by the rows each epoch adds, and are rewritten whole when they must be.</summary>
public sealed class ExperimentFilesTests : IDisposable
{
    private static readonly Config Cfg = Config.FromJson("""{"hidden":8,"epochs":3,"batch_size":64}""");
    private readonly string dir = Directory.CreateTempSubdirectory("rf-files-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    private static MinibatchRecord Record(Mode mode, int epoch, double loss, int? correct = null) =>
        new(1, mode, epoch, 0, 0, 64, loss,
            correct is { } c ? new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(c, 64) } : new Dictionary<string, NamedCount>(),
            MetricValues.Empty);

    private static IEnumerable<IRunEvent> Epoch(int epoch, double loss) =>
    [
        new ChunkCompleted(epoch, 0, loss, [Record(Mode.Train, epoch, loss)], null),
        new EpochMetricsRecorded(Mode.Train, epoch, new Dictionary<string, double> { ["loss"] = loss }, false),
        new EpochCompleted(epoch),
    ];

    [Fact]
    public void Each_epoch_appends_its_rows_a_new_column_or_a_restore_rewrites_the_file_whole()
    {
        var files = new ExperimentFiles(dir);
        var minibatches = Path.Combine(files.MetricsDirectory, "run-1.minibatches.csv");
        files.Apply(1, new RunStarted(1, false));
        foreach (var e in Epoch(0, 0.5).Concat(Epoch(1, 0.25))) files.Apply(1, e);
        var afterTwo = File.ReadAllText(minibatches);
        Assert.Equal("mode,epoch,chunk,step,examples,loss\ntrain,1,1,1,64,0.5\ntrain,2,1,1,64,0.25\n", afterTwo.ReplaceLineEndings("\n"));

        // a validation minibatch brings a column the file does not have: the file is rewritten with it
        files.Apply(1, new ValidationCompleted(1, [Record(Mode.Validation, 1, 0.75, correct: 32)]));
        files.Apply(1, new EpochMetricsRecorded(Mode.Validation, 1, new Dictionary<string, double> { ["loss"] = 0.75 }, false));
        Assert.Equal("mode,epoch,chunk,step,examples,loss,top1_accuracy\ntrain,1,1,1,64,0.5,\ntrain,2,1,1,64,0.25,\nvalidation,2,1,1,64,0.75,0.5\n",
            File.ReadAllText(minibatches).ReplaceLineEndings("\n"));

        // back to the state after the first epoch: the file is rewritten with the kept rows (and their columns), the retrained epoch follows
        var state = new RunState(1, Cfg).Apply(new RunStarted(1, false));
        foreach (var e in Epoch(0, 0.5)) state = state.Apply(e);
        files.Apply(1, new RestoredFromCheckpoint(RunSnapshot.Of(state), "test"));
        foreach (var e in Epoch(1, 0.125)) files.Apply(1, e);
        Assert.Equal("mode,epoch,chunk,step,examples,loss\ntrain,1,1,1,64,0.5\ntrain,2,1,1,64,0.125\n",
            File.ReadAllText(minibatches).ReplaceLineEndings("\n"));
        Assert.Equal("mode,epoch,loss\ntrain,1,0.5\ntrain,2,0.125\n",
            File.ReadAllText(Path.Combine(files.MetricsDirectory, "run-1.epochs.csv")).ReplaceLineEndings("\n"));
    }
}
