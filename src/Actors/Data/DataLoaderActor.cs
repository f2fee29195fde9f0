using Akka.Actor;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using static RapidFire.Actors.Data.DataLoaderProtocol;

namespace RapidFire.Actors.Data;

/// <summary>
/// Prepares minibatches: <c>RowPrep</c> per row, <c>CollateFn</c> per minibatch, on its own thread, through the node's
/// <see cref="PreparedExamples"/> (rows prepared before are gathered from it). One of a pool;
/// devices ask a bounded number of minibatches ahead, so the pool works while the devices train and memory is
/// bounded by the prefetch window, not by the dataset.
/// </summary>
public sealed class DataLoaderActor : ReceiveActor
{
    /// <summary>Props of a loader on the loader dispatcher.</summary>
    public static Props Props(TrainingServices services) =>
        Akka.Actor.Props.Create(() => new DataLoaderActor(services)).WithDispatcher("rapidfire.loader-dispatcher");

    /// <summary>Creates a loader.</summary>
    public DataLoaderActor(TrainingServices services)
    {
        Receive<PrepareMinibatch>(request =>
        {
            try
            {
                services.Exchange.Put(request.Key, Prepare(services, request));
                Sender.Tell(new MinibatchReady(request.Key));
            }
            catch (Exception e)
            {
                Sender.Tell(new MinibatchFailed(request.Key, RunFailureException.Of(e) with { Mode = request.Mode.ToName() }));
            }
        });
    }

    /// <summary>Runs the user's preprocessing for one minibatch (see <see cref="MinibatchPreparation"/>).</summary>
    private static PreparedMinibatch Prepare(TrainingServices services, PrepareMinibatch request)
    {
        var spec = services.Specs.Get(request.RunId, request.Config, request.Mode);
        var table = SpecCall.Run("data", () => services.Partition(request.Mode));
        var prepared = services.Prepared.Prepare(spec, table, request.Rows, request.Config, request.Mode);
        return request.TorchDevice == "cpu" ? prepared : prepared with { Batch = DeviceCopy.ToDevice(prepared.Batch, request.TorchDevice) };
    }
}
