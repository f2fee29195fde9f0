using Akka.Actor;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Data;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Training;
using static RapidFire.Actors.Cluster.WorkerProtocol;

namespace RapidFire.Actors.Cluster;

/// <summary>
/// One node's part in one fit: its DataLoaderActors and a GpuActor per device, over the node's
/// <see cref="TrainingServices"/>. It tells the fit which devices it brings (<see cref="FitJoined"/>) and lives until
/// the fit tells it to leave (or dies with its node).
/// </summary>
/// <remarks>
/// On the experiment's own node (embedded) it shares the fit's services: captured checkpoints wait in their pending
/// map for the runs to write them. On a worker node it has services of its own, and it holds the captured checkpoints
/// of the chunks its devices trained until each run asks it to write one (<see cref="WriteCheckpoint"/>) to the
/// shared store.
/// </remarks>
public sealed class WorkerFit : ReceiveActor
{
    private readonly TrainingServices services;
    private readonly bool ownsServices;
    private readonly CheckpointRetention retention;

    /// <summary>
    /// Props of node <paramref name="worker"/>'s part in fit <paramref name="fitId"/>, with <paramref name="devices"/>
    /// (named <paramref name="worker"/><c>/</c>device in the fit's pool when <paramref name="ownsServices"/>: a worker
    /// node; as they are on the experiment's node). It answers <see cref="FitJoined"/> to <paramref name="fit"/>.
    /// </summary>
    public static Props Props(string fitId, string worker, TrainingServices services, IReadOnlyList<DeviceSlot> devices, bool ownsServices, IActorRef fit) =>
        Akka.Actor.Props.Create(() => new WorkerFit(fitId, worker, services, devices, ownsServices, fit));

    /// <summary>Creates the actor.</summary>
    public WorkerFit(string fitId, string worker, TrainingServices services, IReadOnlyList<DeviceSlot> devices, bool ownsServices, IActorRef fit)
    {
        this.services = services;
        this.ownsServices = ownsServices;
        retention = new CheckpointRetention(services.Settings.KeepCheckpoints);
        var events = Context.System.EventStream;
        services.Prepared.Notify ??= message => events.Publish(new DataLoaderProtocol.PrepCacheNoted(message));
        var loaders = Context.ActorOf(DataLoaderActor.Props(services), "loaders");
        var pool = new List<PoolDevice>();
        foreach (var device in devices)
        {
            var slot = ownsServices ? device with { Id = $"{worker}/{device.Id}" } : device;
            var gpu = Context.ActorOf(GpuActor.Props(slot, services, loaders, ownsServices ? Self : null), $"device-{device.Id.Replace(':', '-')}");
            pool.Add(new PoolDevice(slot.Id, slot.TorchDevice, gpu));
        }
        fit.Tell(new FitJoined(fitId, worker, pool, Self));

        Receive<WriteCheckpoint>(write =>
        {
            var from = Sender;
            if (services.Checkpoints is not { } store || !services.PendingCheckpoints.TryTake(write.Key, out var payload))
            {
                from.Tell(new CheckpointNotWritten(write.Key, $"worker {worker} no longer holds the captured state of {write.Key}"));
                return;
            }
            store.SaveAndPruneAsync(write.Key, write.Unpacked(), payload, write.ChunksPerEpoch, retention).PipeTo(from,
                success: _ => new CheckpointWritten(write.Key),
                failure: e => new CheckpointNotWritten(write.Key, $"{store.Describe(write.Key)} (written by worker {worker}): {e.GetBaseException().Message}"));
        });
        Receive<LeaveFit>(_ => Context.Stop(Self));
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        if (ownsServices) services.Dispose();
    }
}
