using Akka.Actor;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using TorchSharp;
using static RapidFire.Actors.Data.DataLoaderProtocol;

namespace RapidFire.Actors.Data;

/// <summary>
/// Prepares minibatches: <c>RowPrep</c> per row, <c>CollateFn</c> per minibatch, on its own thread. One of a pool;
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

    /// <summary>Runs the user's preprocessing for one minibatch; the per-row tensors die with the scope, the collated ones live on.</summary>
    private static PreparedMinibatch Prepare(TrainingServices services, PrepareMinibatch request)
    {
        var spec = services.Specs.Get(request.RunId, request.Config, request.Mode);
        var table = SpecCall.Run("data", () => services.Partition(request.Mode));
        using var scope = torch.NewDisposeScope();
        var items = new List<object>(request.Rows.Length);
        var ids = new long[request.Rows.Length];
        for (var i = 0; i < request.Rows.Length; i++)
        {
            var row = table[request.Rows[i]];
            ids[i] = row.Id;
            try
            {
                items.Add(SpecCall.Run("RowPrep", () => spec.RowPrep(row, request.Config, request.Mode)
                    ?? throw new SpecException("RowPrep", "returned null")));
            }
            catch (RunFailureException e)
            {
                throw new RunFailureException(e.Failure with { RowId = row.Id }, e.InnerException);
            }
        }
        var collated = SpecCall.Run("CollateFn", () => spec.CollateFn(items, request.Config, request.Mode));
        foreach (var tensor in TensorTree.Tensors(collated))
            if (scope.Contains(tensor)) scope.Detach(tensor);
        return new PreparedMinibatch(new Minibatch(collated, items.Count), ids);
    }
}
