using Akka.Actor;
using Akka.Event;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;
using static RapidFire.Actors.Cluster.WorkerProtocol;

namespace RapidFire.Actors.Cluster;

/// <summary>
/// A worker node's entry point (<c>/user/rapidfire-worker</c>, on the nodes of role <c>gpu</c>): when a fit asks it to
/// join (<see cref="JoinFit"/>), it compiles the shipped spec (its hash checked), opens the data handle and the shared
/// checkpoint store, and starts a <see cref="WorkerFit"/> with the node's devices; or refuses, saying why and naming
/// the worker, so the fit goes on without it.
/// </summary>
public sealed class WorkerActor : ReceiveActor
{
    private readonly ILoggingAdapter log = Context.GetLogger();

    /// <summary>
    /// Props of the worker <paramref name="worker"/> (its name in the fit's device pool, such as <c>host:port</c>) with
    /// <paramref name="devices"/>; <paramref name="storage"/> opens the checkpoint store at a location (a folder or an
    /// <c>s3://</c> prefix) and the data storage.
    /// </summary>
    public static Props Props(string worker, IReadOnlyList<DeviceSlot> devices, Func<string, TrainingServices.Storage> storage) =>
        Akka.Actor.Props.Create(() => new WorkerActor(worker, devices, storage));

    /// <summary>Creates the actor.</summary>
    public WorkerActor(string worker, IReadOnlyList<DeviceSlot> devices, Func<string, TrainingServices.Storage> storage)
    {
        Receive<JoinFit>(join =>
        {
            var name = $"fit-{Uri.EscapeDataString(join.FitId)}";
            if (!Context.Child(name).IsNobody())
            {
                Sender.Tell(new FitRefused(join.FitId, worker, $"worker {worker} already trains for fit {join.FitId}"));
                return;
            }
            TrainingServices? services = null;
            try
            {
                var factory = join.Spec.Factory();
                var data = DataHandle.FromJson(join.DataHandleJson, join.DataDirectory);
                services = new TrainingServices(factory, data, join.Settings, storage(join.CheckpointLocation));
                services.Partition(Mode.Train); // the data must be readable from this node
                torch.set_num_threads(join.Settings.TorchThreadsFor(devices.Count(d => !d.IsCuda)));
                Context.ActorOf(WorkerFit.Props(join.FitId, worker, services, devices, ownsServices: true, Sender), name);
                log.Info("worker {0} joins fit {1} with {2}", worker, join.FitId, string.Join(", ", devices.Select(d => d.Id)));
            }
            catch (Exception e) when (e is RapidFireException or IOException or ArgumentException or InvalidOperationException or UnauthorizedAccessException)
            {
                services?.Dispose();
                var problems = e is RapidFireException r ? string.Join("; ", r.Problems) : e.Message;
                log.Warning("worker {0} cannot join fit {1}: {2}", worker, join.FitId, problems);
                Sender.Tell(new FitRefused(join.FitId, worker, $"worker {worker}: {problems}"));
            }
        });
    }
}
