using Akka.Actor;
using RapidFire.Actors.Checkpoints;

namespace RapidFire.Actors.Cluster;

/// <summary>Marks the messages that cross nodes; they are serialized by <see cref="RemoteSerializer"/> as JSON.</summary>
public interface IRemoteMessage;

/// <summary>
/// Messages between a fit (its FitActor, on the experiment's node) and the nodes whose devices train for it: the
/// embedded node's own devices (a <see cref="WorkerFit"/> beside the fit) and every worker node of a cluster (its
/// <see cref="WorkerActor"/> starts a <see cref="WorkerFit"/> when asked). They carry references and metrics, never
/// tensors or checkpoints: a run's state moves between nodes through the checkpoint store.
/// </summary>
public static class WorkerProtocol
{
    /// <summary>The name of every node's <see cref="WorkerActor"/> under <c>/user</c>.</summary>
    public const string WorkerName = "rapidfire-worker";

    /// <summary>The cluster role of the nodes that train (their devices join every fit's pool).</summary>
    public const string WorkerRole = "gpu";

    /// <summary>Whether <paramref name="system"/> is a node of an Akka cluster (<c>akka.actor.provider = cluster</c>).</summary>
    public static bool IsClusterNode(ActorSystem system) => system is ExtendedActorSystem { Provider: Akka.Cluster.ClusterActorRefProvider };

    /// <summary>
    /// Fit to worker node: train for fit <paramref name="FitId"/> (the experiment's name and the fit's number) with
    /// this node's devices. The node compiles <paramref name="Spec"/>, opens the data handle (its locators must be
    /// reachable from the node: a shared folder or S3) and the checkpoint store at <paramref name="CheckpointLocation"/>
    /// (a shared folder or <c>s3://</c>), and answers <see cref="FitJoined"/> or <see cref="FitRefused"/>.
    /// </summary>
    public sealed record JoinFit(string FitId, SpecPackage Spec, string DataHandleJson, string DataDirectory, RuntimeSettings Settings,
        string CheckpointLocation) : IRemoteMessage;

    /// <summary>A device a fit may give tasks to: its id in the fit's pool, its torch device and its GpuActor.</summary>
    public sealed record PoolDevice(string DeviceId, string TorchDevice, IActorRef Gpu);

    /// <summary>
    /// Worker node to fit: its devices train for the fit from now on. <paramref name="Host"/> is the node's
    /// <see cref="WorkerFit"/>: the fit watches it (a node that dies takes its tasks with it) and tells it to leave.
    /// </summary>
    public sealed record FitJoined(string FitId, string Worker, IReadOnlyList<PoolDevice> Devices, IActorRef Host) : IRemoteMessage;

    /// <summary>Worker node to fit: it cannot train for the fit (the spec does not compile there, a locator is unreachable...).</summary>
    public sealed record FitRefused(string FitId, string Worker, string Reason) : IRemoteMessage;

    /// <summary>Fit to a node's <see cref="WorkerFit"/>: the fit ended; stop its devices and release its states.</summary>
    public sealed record LeaveFit(string FitId) : IRemoteMessage;

    /// <summary>
    /// Run to the node holding a captured checkpoint (see <see cref="Training.GpuProtocol.Trained.Holder"/>): write it
    /// durably under <paramref name="Key"/> with <paramref name="Header"/> (which the run computes: it holds the run's
    /// state), then prune the run's older checkpoints; answered with <see cref="CheckpointWritten"/> or a failure.
    /// The header's run state (which holds the epoch's minibatch records, so it grows through an epoch) travels apart,
    /// gzipped: <paramref name="State"/> (see <see cref="Of"/>); <paramref name="Header"/>'s own is empty.
    /// </summary>
    public sealed record WriteCheckpoint(CheckpointRef Key, CheckpointHeader Header, byte[] State, int ChunksPerEpoch) : IRemoteMessage
    {
        /// <summary>The message for <paramref name="header"/>: its run state gzipped, out of the header.</summary>
        public static WriteCheckpoint Of(CheckpointRef key, CheckpointHeader header, int chunksPerEpoch)
        {
            using var packed = new MemoryStream();
            using (var gzip = new System.IO.Compression.GZipStream(packed, System.IO.Compression.CompressionLevel.Fastest))
                gzip.Write(System.Text.Encoding.UTF8.GetBytes(header.State));
            return new WriteCheckpoint(key, header with { State = "" }, packed.ToArray(), chunksPerEpoch);
        }

        /// <summary>The header as the run computed it, its run state unpacked.</summary>
        public CheckpointHeader Unpacked()
        {
            using var gzip = new System.IO.Compression.GZipStream(new MemoryStream(State), System.IO.Compression.CompressionMode.Decompress);
            using var reader = new StreamReader(gzip, System.Text.Encoding.UTF8);
            return Header with { State = reader.ReadToEnd() };
        }
    }

    /// <summary>The checkpoint is durable.</summary>
    public sealed record CheckpointWritten(CheckpointRef Key) : IRemoteMessage;

    /// <summary>The checkpoint could not be written (the message names the file), or its captured state is gone.</summary>
    public sealed record CheckpointNotWritten(CheckpointRef Key, string Reason) : IRemoteMessage;
}
