using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Data;
using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Spec;

namespace RapidFire.Actors.Evaluation;

/// <summary>
/// Tests and predicts with trained runs, outside any fit: a plain class, driven from the host on one thread. A run's
/// model is created fresh (<see cref="RunModel.Create"/> with the run's config and seed), brought to a checkpoint
/// (<see cref="RunStateCodec.RestoreInto"/>) and moved to the device; the partition is read in file order in
/// minibatches of the run's <c>batch_size</c> (<see cref="EpochPlan.ForEvaluation"/>), each prepared by the spec's
/// <c>RowPrep</c> and <c>CollateFn</c> (<see cref="MinibatchPreparation"/>).
/// </summary>
/// <remarks>
/// Test computes what validation computes, the same way (<see cref="MinibatchTrainer.Evaluate"/>, then
/// <see cref="EpochMetrics.Close"/>): the loss, the named metrics and <c>AggregateMetrics</c>, in
/// <see cref="Mode.Test"/>. The spec instance of each run and mode is initialized once, with that mode
/// (<see cref="SpecInstances"/>). Every tensor of a minibatch is disposed when its step ends. Calls must stay on one
/// thread (TorchSharp's dispose scopes and <c>no_grad</c> are thread-local).
/// </remarks>
/// <param name="services">The spec, data handle and settings of the fit the runs belong to.</param>
/// <param name="device">The torch device to compute on (<c>cpu</c>, <c>cuda:0</c>).</param>
public sealed class RunEvaluator(TrainingServices services, string device)
{
    /// <summary>The device it computes on.</summary>
    public string Device { get; } = device;

    /// <summary>
    /// The test metrics of a run's state at <paramref name="checkpoint"/>: <c>loss</c>, the named metrics, then
    /// <c>AggregateMetrics</c>' keys. A failure is a <see cref="RunFailureException"/> (mode <c>test</c>).
    /// </summary>
    public IReadOnlyDictionary<string, double> Test(int runId, Config cfg, Checkpoint checkpoint, CancellationToken cancellation = default) =>
        InMode(Mode.Test, () =>
        {
            var spec = services.Specs.Get(runId, cfg, Mode.Test);
            var table = SpecCall.Run("data", () => services.Partition(Mode.Test));
            using var state = Restored(spec, cfg, checkpoint);
            var trainer = new MinibatchTrainer(spec, cfg);
            var plan = EpochPlan.ForEvaluation(table.RowCount, cfg.BatchSize);
            var records = new List<MinibatchRecord>(plan.MinibatchCount);
            for (var i = 0; i < plan.MinibatchCount; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                var prepared = MinibatchPreparation.Prepare(spec, table, plan.Minibatch(i), cfg, Mode.Test);
                var result = trainer.Evaluate(state, prepared.Batch, Mode.Test, new MinibatchOrigin(i, prepared.Ids));
                records.Add(new MinibatchRecord(runId, Mode.Test, checkpoint.Ref.Epoch, 0, i, prepared.Batch.Size, result.Loss, result.Named, result.Values));
            }
            return EpochMetrics.Close(records, spec, cfg, Mode.Test);
        });

    /// <summary>
    /// The predictions of a run's state at <paramref name="checkpoint"/> over the predict partition: one row per predict
    /// id, in partition order. A failure is a <see cref="RunFailureException"/> (mode <c>predict</c>).
    /// </summary>
    public PredictionTable Predict(int runId, Config cfg, Checkpoint checkpoint, CancellationToken cancellation = default) =>
        InMode(Mode.Predict, () =>
        {
            var spec = services.Specs.Get(runId, cfg, Mode.Predict);
            var table = SpecCall.Run("data", () => services.Partition(Mode.Predict));
            using var state = Restored(spec, cfg, checkpoint);
            var trainer = new MinibatchTrainer(spec, cfg);
            var plan = EpochPlan.ForEvaluation(table.RowCount, cfg.BatchSize);
            var predictions = new PredictionTable();
            for (var i = 0; i < plan.MinibatchCount; i++)
            {
                cancellation.ThrowIfCancellationRequested();
                var prepared = MinibatchPreparation.Prepare(spec, table, plan.Minibatch(i), cfg, Mode.Predict);
                trainer.Predict(state, prepared.Batch, outputs => SpecCall.Run("ComputeForward", () => predictions.Add(prepared.Ids, outputs)));
            }
            return predictions;
        });

    private RunModel Restored(MLSpec spec, Config cfg, Checkpoint checkpoint)
    {
        var state = RunModel.Create(spec, cfg, services.SeedOf(cfg));
        try
        {
            SpecCall.Run("checkpoint", () => RunStateCodec.RestoreInto(state, checkpoint));
            SpecCall.Run("device", () => state.MoveTo(Device));
            return state;
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    private static T InMode<T>(Mode mode, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (OperationCanceledException)
        {
            throw;
        }
        catch (Exception e)
        {
            var failure = RunFailureException.Of(e);
            throw new RunFailureException(failure with { Mode = failure.Mode ?? mode.ToName() }, e);
        }
    }
}
