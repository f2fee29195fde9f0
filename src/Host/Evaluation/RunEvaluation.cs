using System.Globalization;
using RapidFire.Actors.Checkpoints;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Evaluation;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;

namespace RapidFire.Host.Evaluation;

/// <summary>
/// Test and predict for an experiment that is not fitting: picks the runs and their checkpoints, builds each fit's spec
/// and data once, evaluates run after run on one thread of its own (<see cref="RunEvaluator"/>) and writes the files
/// (<see cref="EvaluationFiles"/>). A run that cannot be evaluated (no such checkpoint, a missing or corrupt file, an
/// MLSpec method that throws) gets its error and the others go on; a missing partition stops everything before any run.
/// </summary>
internal sealed class RunEvaluation(Experiment experiment, ICheckpointStore store)
{
    /// <summary>Columns of a predict partition taken for labels: names a predict ESF should not need.</summary>
    internal static readonly IReadOnlyList<string> LabelColumnNames = ["label", "labels", "target", "targets"];

    private sealed record Target(RunState Run, CheckpointResolution Choice);

    private sealed record FitGroup(TrainingServices Services, string Device, int TorchThreads, IReadOnlyList<Target> Targets);

    private sealed record Plan(CheckpointChoice Choice, IReadOnlyList<FitGroup> Groups, IReadOnlyList<string> Warnings);

    public async Task<TestReport> TestAsync(TestOptions options, CancellationToken cancellation)
    {
        var choice = options.Checkpoint ?? CheckpointChoice.Final;
        var plan = await PlanAsync(Mode.Test, options.Runs, choice, options.Data, options.Device, cancellation);
        var folder = EvaluationFiles.TestFolder(experiment.Path);
        experiment.Log($"test of {Runs(plan)} with checkpoint {choice} started");
        var results = await OnOwnThread(plan, (evaluator, target, checkpoint) =>
        {
            var metrics = evaluator.Test(target.Run.RunId, target.Run.Config, checkpoint, cancellation);
            return new RunTestResult(target.Run.RunId, checkpoint.Ref, target.Choice.Reason, metrics,
                EvaluationFiles.WriteTest(folder, target.Run.RunId, choice.ToString(), checkpoint.Ref, metrics), null);
        }, (target, error) =>
        {
            EvaluationFiles.RemoveTest(folder, target.Run.RunId); // an older test's file would pass for this one's
            return new RunTestResult(target.Run.RunId, target.Choice.Checkpoint, target.Choice.Reason, new Dictionary<string, double>(), null, error);
        }, cancellation);
        EvaluationFiles.WriteTestSummary(folder, choice.ToString(), results);
        foreach (var result in results)
            experiment.Log(result.Error is { } error
                ? $"test of run {result.RunId} failed: {error}"
                : $"test of run {result.RunId} ({result.Checkpoint!.RelativePath}, {result.Reason}): " +
                  string.Join(", ", result.Metrics.Select(kv => $"{kv.Key} {kv.Value.ToString("0.####", CultureInfo.InvariantCulture)}")));
        await Upload([.. results.Select(r => r.File).OfType<string>(), EvaluationFiles.TestSummary(folder)], cancellation);
        return new TestReport(choice.ToString(), results, folder, plan.Warnings);
    }

    public async Task<PredictReport> PredictAsync(PredictOptions options, CancellationToken cancellation)
    {
        var choice = options.Checkpoint ?? CheckpointChoice.Final;
        var plan = await PlanAsync(Mode.Predict, options.Runs, choice, options.Data, options.Device, cancellation);
        var folder = EvaluationFiles.PredictFolder(experiment.Path);
        experiment.Log($"predict with {Runs(plan)} with checkpoint {choice} started");
        var results = await OnOwnThread(plan, (evaluator, target, checkpoint) =>
        {
            var predictions = evaluator.Predict(target.Run.RunId, target.Run.Config, checkpoint, cancellation);
            var file = EvaluationFiles.WritePredictions(folder, target.Run.RunId, predictions, options.Format);
            return new RunPredictResult(target.Run.RunId, checkpoint.Ref, target.Choice.Reason, predictions.RowCount,
                predictions.ColumnNames, file, null);
        }, (target, error) =>
        {
            EvaluationFiles.RemovePredictions(folder, target.Run.RunId);
            return new RunPredictResult(target.Run.RunId, target.Choice.Checkpoint, target.Choice.Reason, 0, [], null, error);
        }, cancellation);
        foreach (var result in results)
            experiment.Log(result.Error is { } error
                ? $"predict with run {result.RunId} failed: {error}"
                : $"predict with run {result.RunId} ({result.Checkpoint!.RelativePath}, {result.Reason}): {result.Rows} rows to {result.File}");
        await Upload(results.Select(r => r.File).OfType<string>(), cancellation);
        return new PredictReport(choice.ToString(), results, folder, plan.Warnings);
    }

    /// <summary>Copies the written files to the artifacts location (<c>rapidfire.artifacts.location</c>), when there is one.</summary>
    private async Task Upload(IEnumerable<string> files, CancellationToken cancellation)
    {
        foreach (var uploaded in await experiment.UploadArtifactsAsync(files, cancellation))
            experiment.Log($"artifact uploaded to {uploaded}");
    }

    private static string Runs(Plan plan)
    {
        var ids = plan.Groups.SelectMany(g => g.Targets).Select(t => t.Run.RunId).Order().ToList();
        return ids.Count == 1 ? $"run {ids[0]}" : $"runs {string.Join(", ", ids)}";
    }

    /// <summary>
    /// Which runs, with which checkpoint, in which fit's spec and data: everything that can be checked before a model
    /// is built. A missing partition, an unreadable ESF, a spec that does not compile or an unknown run id stops here.
    /// </summary>
    private async Task<Plan> PlanAsync(Mode mode, IReadOnlyList<int>? runIds, CheckpointChoice choice, DataHandle? data, string? device,
        CancellationToken cancellation)
    {
        var verb = mode == Mode.Test ? "test" : "predict with";
        var snapshot = await experiment.RunsAsync(cancellation);
        if (snapshot.Fitting)
            throw new InvalidOperationException($"experiment '{experiment.Name}' is fitting; {verb} its runs once the fit has ended");
        var state = await experiment.StateAsync();
        var fitOf = state.Fits.SelectMany(f => f.Runs.Select(r => (r.RunId, Fit: f))).ToDictionary(x => x.RunId, x => x.Fit);
        var runs = snapshot.Runs.Where(r => fitOf.ContainsKey(r.RunId)).ToDictionary(r => r.RunId);

        List<RunState> chosen;
        if (runIds is null)
        {
            chosen = [.. runs.Values.Where(r => r.Status == RunStatus.Completed).OrderBy(r => r.RunId)];
            if (chosen.Count == 0)
                throw new InvalidOperationException(runs.Count == 0
                    ? $"experiment '{experiment.Name}' has no runs to {verb}"
                    : $"experiment '{experiment.Name}' has no completed run to {verb} ({string.Join(", ", runs.Values.OrderBy(r => r.RunId).Select(r => $"run {r.RunId} {r.Status}"))}); name the runs to {verb} (--runs)");
        }
        else
        {
            var unknown = runIds.Where(id => !runs.ContainsKey(id)).Distinct().ToList();
            if (unknown.Count > 0)
                throw new ArgumentException($"experiment '{experiment.Name}' has no run {string.Join(", ", unknown)}; its runs are {string.Join(", ", runs.Keys.Order())}");
            chosen = [.. runIds.Distinct().Order().Select(id => runs[id])];
        }

        var groups = new List<FitGroup>();
        var warnings = new List<string>();
        var warned = new HashSet<string>();
        foreach (var fit in chosen.GroupBy(r => fitOf[r.RunId].Definition.FitId).OrderBy(g => g.Key))
        {
            var definition = fitOf[fit.First().RunId].Definition;
            var handle = data ?? DataHandle.FromJson(definition.DataHandleJson, definition.DataDirectory, $"the data handle of fit {definition.FitId}");
            if (!handle.HasPartition(mode))
                throw new DataException(handle.Source, null,
                    $"it has no '{mode.ToName()}' partition (it gives: {string.Join(", ", handle.Partitions.Keys.Select(m => m.ToName()))}); " +
                    $"add a \"{mode.ToName()}\" locator to it" + (data is null ? $" or give a data handle that has one (--data)" : ""));
            var services = new TrainingServices(definition.Spec.Factory(), handle, definition.Settings, new TrainingServices.Storage(null, experiment.DataStorage));
            var table = services.Partition(mode); // read and checked once, before any run
            if (mode == Mode.Predict)
                foreach (var column in table.Columns.Where(c => LabelColumnNames.Contains(c, StringComparer.OrdinalIgnoreCase)))
                {
                    var warning = $"predict partition {table.File} has a label column '{column}' that predict does not use; it is ignored";
                    if (warned.Add(warning)) warnings.Add(warning);
                }
            var targets = fit.OrderBy(r => r.RunId)
                .Select(run => new Target(run, choice.Resolve(run, store.List(run.RunId), store.Describe)))
                .ToList();
            var (torchDevice, threads) = Device(device, definition.Settings);
            groups.Add(new FitGroup(services, torchDevice, threads, targets));
        }
        foreach (var warning in warnings) experiment.Log($"warning: {warning}");
        return new Plan(choice, groups, warnings);
    }

    /// <summary>
    /// The device to compute on (the one asked for, else the fit's first when this machine has it, else the CPU) and the
    /// intra-op threads: the fit's, since a float sum split over another number of threads rounds differently; with the
    /// same count, a test on the validation rows gives exactly the fit's validation metrics.
    /// </summary>
    private static (string Device, int TorchThreads) Device(string? asked, Actors.RuntimeSettings settings)
    {
        IReadOnlyList<DeviceSlot>? fitDevices;
        try
        {
            fitDevices = DeviceSpec.Parse(settings.Devices, Experiment.CudaDevices);
        }
        catch (ConfigException)
        {
            fitDevices = null; // the fit ran on CUDA devices this machine lacks
        }
        var device = asked is not null
            ? DeviceSpec.Parse(asked, Experiment.CudaDevices)[0].TorchDevice // a bad value is refused, naming it
            : fitDevices?[0].TorchDevice ?? "cpu";
        return (device, settings.TorchThreadsFor(fitDevices?.Count(d => !d.IsCuda) ?? 1));
    }

    /// <summary>
    /// Evaluates every run of the plan on a thread of its own (TorchSharp's dispose scopes are per thread, and a long
    /// evaluation must not hold a pool thread), each run's failure caught and kept as its result.
    /// </summary>
    private Task<IReadOnlyList<T>> OnOwnThread<T>(Plan plan, Func<RunEvaluator, Target, Checkpoint, T> evaluate,
        Func<Target, string, T> failed, CancellationToken cancellation) =>
        Task.Factory.StartNew<IReadOnlyList<T>>(() =>
        {
            var results = new List<(int RunId, T Result)>();
            foreach (var group in plan.Groups)
            {
                using var services = group.Services;
                torch.set_num_threads(group.TorchThreads);
                var evaluator = new RunEvaluator(services, group.Device);
                foreach (var target in group.Targets)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var id = target.Run.RunId;
                    if (target.Choice.Error is { } error)
                    {
                        results.Add((id, failed(target, error)));
                        continue;
                    }
                    try
                    {
                        var checkpoint = store.Load(target.Choice.Checkpoint!);
                        results.Add((id, evaluate(evaluator, target, checkpoint)));
                    }
                    catch (Exception e) when (e is FileNotFoundException or CheckpointCorruptException or IOException)
                    {
                        results.Add((id, failed(target, $"run {id}: {e.Message}")));
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        results.Add((id, failed(target, $"run {id}: {RunFailureException.Of(e)}")));
                    }
                }
            }
            return [.. results.OrderBy(r => r.RunId).Select(r => r.Result)];
        }, cancellation, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
