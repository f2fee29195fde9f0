using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Cluster;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Metrics;
using static RapidFire.Actors.Training.GpuProtocol;

namespace RapidFire.Actors.Tests;

public sealed class ClusterUnitTests : Akka.TestKit.Xunit2.TestKit
{
    public ClusterUnitTests() : base(RuntimeSettings.Reference) { }

    [Fact]
    public void A_worker_is_slow_when_a_runs_minibatches_take_three_times_longer_there_and_is_reported_once()
    {
        var slow = new SlowWorkers();
        Assert.Null(slow.Observe("a", 1, 0.010)); // nothing to compare with yet
        Assert.Null(slow.Observe("b", 1, 0.012));
        Assert.Null(slow.Observe("b", 2, 0.500)); // another run: not comparable
        Assert.Equal("worker b is slow: run 1's minibatches take 40 ms there, 10 ms on the other workers", slow.Observe("b", 1, 0.040));
        Assert.Null(slow.Observe("b", 1, 0.050)); // reported once
        Assert.Null(slow.Observe("b", 1, 0.011)); // fast again
        Assert.NotNull(slow.Observe("b", 1, 0.060)); // and slow again
    }

    [Fact]
    public void Messages_between_nodes_round_trip_through_the_remote_serializer()
    {
        var serializer = Sys.Serialization.FindSerializerFor(new CancelTask());
        Assert.IsType<RemoteSerializer>(serializer);
        var cfg = new Config([new("hidden", 8L), new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam" }), new("num_devices", "auto")]);
        var record = new MinibatchRecord(3, Mode.Train, 1, 2, 17, 32, 0.25, new Dictionary<string, NamedCount> { ["top1_accuracy"] = new(20, 32) },
            new MetricValues(new Dictionary<string, double> { ["correct"] = 20 }, new Dictionary<string, IReadOnlyList<object>>()));
        var finished = new TaskFinished("w1/cpu", RunTask.Train(3, 1, 2),
            new Trained(0.25, new TaskTiming(4, 0.5, 0.01), [record], new CheckpointRef(3, 1, 2), TestActor), ["w1/cpu-1"]);
        var order = new RunTaskOn(RunTask.Validate(3, 1), cfg, 4, new CheckpointRef(3, 1, 3));

        T RoundTrip<T>(T message) where T : class
        {
            var bytes = serializer.ToBinary(message);
            return (T)((Akka.Serialization.SerializerWithStringManifest)serializer).FromBinary(bytes, ((Akka.Serialization.SerializerWithStringManifest)serializer).Manifest(message));
        }

        var back = RoundTrip(finished);
        Assert.Equal(finished.Task, back.Task);
        var trained = Assert.IsType<Trained>(back.Outcome);
        Assert.Equal(TestActor, trained.Holder);
        Assert.Equal(new CheckpointRef(3, 1, 2), trained.Checkpoint);
        Assert.Equal(0.25, trained.Records[0].Loss);
        Assert.Equal(new NamedCount(20, 32), trained.Records[0].Named["top1_accuracy"]);
        Assert.Equal(["w1/cpu-1"], back.Followers);
        var orderBack = RoundTrip(order);
        Assert.Equal(cfg, orderBack.Config);
        Assert.Equal(order.Checkpoint, orderBack.Checkpoint);
        var failed = RoundTrip(new TaskFinished("w1/cpu", RunTask.Train(3, 1, 2), new Failed(new RunFailure("ComputeForward", "boom", "train", 2, 3))));
        Assert.Equal(new RunFailure("ComputeForward", "boom", "train", 2, 3), Assert.IsType<Failed>(failed.Outcome).Failure);
    }

    [Fact]
    public void A_shipped_spec_whose_text_does_not_match_its_hash_is_refused_naming_the_file()
    {
        var package = new SpecPackage("Mine.cs", "public class X {}", "0000", null);
        var error = Assert.Throws<SpecCompilationException>(() => package.Factory());
        Assert.StartsWith("Mine.cs: the spec arrived with SHA-256 ", error.Message);
        Assert.Contains("not 0000", error.Message);
    }

    [Fact]
    public void A_checkpoint_header_travels_with_its_run_state_gzipped_and_comes_back_whole()
    {
        var state = "{\"records\":[" + string.Join(",", Enumerable.Range(0, 2000).Select(i => $"{{\"Step\":{i},\"Loss\":0.25,\"Examples\":8}}")) + "]}";
        var header = new CheckpointHeader(3, 1, 2, 42, 1, DateTimeOffset.UnixEpoch, state);
        var message = WorkerProtocol.WriteCheckpoint.Of(new CheckpointRef(3, 1, 2), header, 4);
        Assert.Equal("", message.Header.State);
        Assert.True(message.State.Length * 5 < state.Length, $"{message.State.Length} bytes gzipped for {state.Length}");
        var serializer = (Akka.Serialization.SerializerWithStringManifest)Sys.Serialization.FindSerializerFor(message);
        var back = (WorkerProtocol.WriteCheckpoint)serializer.FromBinary(serializer.ToBinary(message), serializer.Manifest(message));
        Assert.Equal(header, back.Unpacked());
    }
}
