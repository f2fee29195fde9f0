using Akka.Actor;
using RapidFire.Actors;
using RapidFire.Actors.Devices;
using RapidFire.Actors.Experiment;
using RapidFire.Actors.Runs;
using RapidFire.Spec;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host;

/// <summary>Fits, their resume, test and predict: what the experiment runs.</summary>
public sealed partial class Experiment
{
    /// <summary>Trains every config of <paramref name="configs"/> concurrently (see the README); returns when every run has ended.</summary>
    /// <param name="spec">The MLSpec: a <c>.cs</c> file (the experiment keeps a copy) or a compiled class.</param>
    /// <param name="configs">The config group; it is expanded (and rejected with every fault) before anything runs.</param>
    /// <param name="data">The data handle; it needs a train partition, and validates every epoch when it has a validation one.</param>
    /// <param name="options">Overrides of the runtime settings for this fit.</param>
    /// <param name="cancellation">Cancels the fit: tasks in flight are abandoned and unfinished runs stopped.</param>
    public Task<FitResult> RunFitAsync(SpecSource spec, ConfigGroup configs, DataHandle data, FitOptions? options = null,
        CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        var settings = (options ?? new FitOptions()).Over(defaults);
        var runs = configs.Expand();
        if (ClusterAddress is null && DeviceProblems(runs, settings.Devices) is { Count: > 0 } problems)
            throw new ConfigException(problems.Select(p => new ConfigError("", p)).ToList());
        return StartFit(spec, configs, runs, data, settings, cancellation);
    }

    /// <summary>
    /// The fit of inputs the CLI has loaded and checked already (<see cref="ExperimentInputs"/>, <see cref="DeviceProblems"/>):
    /// the group is not read or expanded again.
    /// </summary>
    internal Task<FitResult> RunCheckedFitAsync(SpecSource spec, ExperimentInputs inputs, FitOptions? options, CancellationToken cancellation)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        if (inputs.Problems.Count > 0 || inputs.Group is null || inputs.Data is null)
            throw new ArgumentException("the inputs have problems: " + string.Join("; ", inputs.Problems), nameof(inputs));
        return StartFit(spec, inputs.Group, inputs.Runs, inputs.Data, (options ?? new FitOptions()).Over(defaults), cancellation);
    }

    private Task<FitResult> StartFit(SpecSource spec, ConfigGroup configs, IReadOnlyList<Config> runs, DataHandle data, RuntimeSettings settings,
        CancellationToken cancellation)
    {
        var start = new ExperimentProtocol.StartFit(spec.Reference(Path), data.ToJson(Path), Path, settings, runs, configs.Pruning, configs.Pbt);
        files.Log($"fit of {runs.Count} runs started ({start.Spec.Name}, devices {settings.Devices}, {settings.Chunks} chunks per epoch" +
                  (configs.Pruning is { } rule ? $", pruning by {rule.Name} on {rule.Metric}" : "") +
                  (configs.Pbt is { } pbt ? $", pbt on {pbt.Metric} every {pbt.PerturbationInterval} {(pbt.Resource == PruningResource.Chunks ? "chunks" : "epochs")}" : "") + ")");
        return Operate(start, cancellation);
    }

    /// <summary>
    /// What is wrong with the configs' <c>num_devices</c> knobs on <paramref name="devices"/> (<c>--devices</c>), each
    /// naming the config (1-based, in expansion order); empty when nothing is. A bad <paramref name="devices"/> is a
    /// <see cref="ConfigException"/>.
    /// </summary>
    public static IReadOnlyList<string> DeviceProblems(IReadOnlyList<Config> configs, string devices)
    {
        var count = DeviceSpec.Parse(devices, CudaDevices).Count;
        return configs.Select((cfg, i) => Actors.Scheduling.DataParallel.Problem($"config {i + 1}", cfg, count)).OfType<string>().ToList();
    }

    /// <summary>The synchronous form of <see cref="RunFitAsync"/>.</summary>
    public FitResult RunFit(SpecSource spec, ConfigGroup configs, DataHandle data, FitOptions? options = null) =>
        RunFitAsync(spec, configs, data, options).GetAwaiter().GetResult();

    /// <summary>
    /// Continues the fit a crash, a full disk or a cancel (Ctrl+C) interrupted, from the last completed chunk of every
    /// run: no completed chunk is trained again, and runs that ended stay ended (a cancelled fit's runs the cancel
    /// stopped go on; those stopped by the user stay stopped). Throws when the experiment has no such fit.
    /// </summary>
    public async Task<FitResult> ResumeFitAsync(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        if (Recovery is { } recovery)
        {
            Recovery = null;
            files.Log($"fit {recovery.Manifest.Definition.FitId} rebuilt from its checkpoints and resumed");
            return await Operate(new ExperimentProtocol.RebuildFit(recovery.Manifest, recovery.States), cancellation);
        }
        var state = await experiment.Ask<ExperimentState>(new ExperimentProtocol.GetExperiment(), TimeSpan.FromSeconds(30));
        if (state.Resumable is not { } fit)
            throw new InvalidOperationException(state.Fits.Count == 0 ? $"experiment '{Name}' has no fit to resume" : $"every fit of experiment '{Name}' has ended: nothing to resume");
        files.Log($"fit {fit.Definition.FitId} resumed");
        return await Operate(new ExperimentProtocol.ResumeFit(), cancellation);
    }

    /// <summary>
    /// Tests trained runs on the <c>test</c> partition, each restored from the checkpoint
    /// <see cref="Evaluation.TestOptions.Checkpoint"/> picks (default <c>final</c>): the loss, the named metrics and
    /// <c>AggregateMetrics</c>, computed as validation computes them, in test mode. By default every run that completed,
    /// in any fit of the experiment, with its fit's spec and data handle. Writes <c>test/run-N.csv</c> and
    /// <c>test/summary.csv</c>; a run that cannot be tested gets its error and the others go on. Refused while a fit runs.
    /// </summary>
    public Task<Evaluation.TestReport> RunTestAsync(Evaluation.TestOptions? options = null, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return new Evaluation.RunEvaluation(this, Checkpoints).TestAsync(options ?? new(), cancellation);
    }

    /// <summary>The synchronous form of <see cref="RunTestAsync"/>.</summary>
    public Evaluation.TestReport RunTest(Evaluation.TestOptions? options = null) => RunTestAsync(options).GetAwaiter().GetResult();

    /// <summary>
    /// Predicts with trained runs over the <c>predict</c> partition (<c>ComputeForward</c> in predict mode, no labels),
    /// each restored from the checkpoint <see cref="Evaluation.PredictOptions.Checkpoint"/> picks; the runs chosen as for
    /// <see cref="RunTestAsync"/>. Writes <c>predict/run-N.csv</c> (or <c>.parquet</c>): <c>id</c>, then a column per
    /// scalar output and one per element of a vector output (<c>logits_0</c>, <c>logits_1</c>, ...), one row per predict id
    /// in partition order.
    /// </summary>
    public Task<Evaluation.PredictReport> RunPredictAsync(Evaluation.PredictOptions? options = null, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(ended, this);
        return new Evaluation.RunEvaluation(this, Checkpoints).PredictAsync(options ?? new(), cancellation);
    }

    /// <summary>The synchronous form of <see cref="RunPredictAsync"/>.</summary>
    public Evaluation.PredictReport RunPredict(Evaluation.PredictOptions? options = null) => RunPredictAsync(options).GetAwaiter().GetResult();

    /// <summary>The runs of every fit of the experiment, with their configs, from its journal.</summary>
    public async Task<ExperimentState> StateAsync() =>
        await experiment.Ask<ExperimentState>(new ExperimentProtocol.GetExperiment(), TimeSpan.FromSeconds(30));

    private async Task<FitResult> Operate(object command, CancellationToken cancellation)
    {
        await using var _ = cancellation.Register(() => experiment.Tell(new FitProtocol.CancelFit()));
        var reply = await experiment.Ask(command, Timeout.InfiniteTimeSpan);
        switch (reply)
        {
            case FitProtocol.FitCompleted { Interrupted: { } why } interrupted:
                return Interrupted(interrupted, why);
            case FitProtocol.FitCompleted completed:
                // Every event of the fit was published before its end: once the bridge answers, all were handled.
                await output.FlushAsync();
                var journaled = await StateAsync();
                files.WriteRuns(completed.Runs, journaled.Fits.SelectMany(f => f.Runs).ToList());
                files.Log($"fit ended{(completed.Cancelled ? " (cancelled)" : "")}: " +
                          string.Join(", ", completed.Runs.Select(r => $"run {r.RunId} {r.Status}{(r.EndedBy is null ? "" : $" ({r.EndedBy})")}")));
                return new FitResult(completed.Runs, completed.Cancelled);
            case Status.Failure { Cause: var cause }:
                files.Log($"fit could not start: {cause.Message}");
                throw cause is RapidFireException or InvalidOperationException ? cause : new InvalidOperationException(cause.Message, cause);
            case ExperimentProtocol.NothingToResume nothing:
                throw new InvalidOperationException(nothing.Reason);
            default:
                throw new InvalidOperationException($"unexpected reply {reply}");
        }
    }

    /// <summary>
    /// The fit stopped before its runs ended because nothing more could be journaled (a full disk): writes what it can
    /// of runs.csv and the log (each file that cannot be written is noted in <see cref="ExperimentFiles.Unwritten"/>)
    /// and says how to go on. The journal keeps every completed chunk; a resume continues the fit.
    /// </summary>
    private FitResult Interrupted(FitProtocol.FitCompleted interrupted, string why)
    {
        IReadOnlyList<RunState> runs = interrupted.Runs;
        if (runs.Count == 0)
            runs = output.LastRuns();
        files.WriteRuns(runs);
        files.Log($"fit interrupted: {why}");
        return new FitResult(runs, false, why);
    }
}
