using RapidFire.Actors.Metrics;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Control;
using RapidFire.Actors.Training;

namespace RapidFire.Host;

/// <summary>What a fit ended with: every run's final state, in run order.</summary>
/// <param name="Runs">The runs of this fit.</param>
/// <param name="Cancelled">Whether the fit was cancelled before every run ended on its own.</param>
/// <param name="Interrupted">
/// Why the fit stopped before its runs ended without journaling their stop (a full disk), or null. The journal keeps
/// every completed chunk: <see cref="Experiment.ResumeFitAsync"/> continues the fit once the cause is gone.
/// </param>
public sealed record FitResult(IReadOnlyList<RunState> Runs, bool Cancelled, string? Interrupted = null);

/// <summary>Something that happened in an experiment, as <see cref="Experiment.Progress"/> reports it.</summary>
public abstract record ExperimentEvent;

/// <summary>A run's state changed (started, trained a chunk, closed an epoch, ended), or was recovered from its journal on a resume.</summary>
public sealed record RunChanged(RunState Run, bool Recovered = false) : ExperimentEvent;

/// <summary>
/// A chunk a run trained was journaled: its minibatch records (what the exporters log per minibatch; a run's state
/// does not carry them).
/// </summary>
public sealed record ChunkRecorded(int RunId, int Epoch, int Chunk, IReadOnlyList<MinibatchRecord> Records) : ExperimentEvent;

/// <summary>A minibatch was processed: its loss and metrics.</summary>
public sealed record MinibatchDone(MinibatchRecord Minibatch) : ExperimentEvent;

/// <summary>An epoch's metrics of one partition were closed.</summary>
public sealed record EpochDone(MetricsProtocol.EpochRecorded Epoch) : ExperimentEvent;

/// <summary>A device finished a task (with its timing: busy and waiting seconds).</summary>
public sealed record TaskDone(GpuProtocol.TaskFinished Task) : ExperimentEvent;

/// <summary>A warning of the runtime, such as a corrupt checkpoint it fell back from.</summary>
public sealed record Warning(string Message) : ExperimentEvent;

/// <summary>On a cluster: a worker node joined the fit, was left out, left, became unreachable or is slow (the message says which).</summary>
public sealed record ClusterNotice(string Worker, string Message) : ExperimentEvent;

/// <summary>What the prepared-example cache kept (a partition's rows, for which runs, how many bytes), or could not keep and why.</summary>
public sealed record CacheNotice(string Message) : ExperimentEvent;

/// <summary>An IC operation was asked for, or took effect, or was refused: its line of the IC log as it now stands.</summary>
public sealed record ControlLogged(ControlRecord Record) : ExperimentEvent;

/// <summary>A pruning rule stopped a run, and why.</summary>
public sealed record RunPrunedBy(int RunId, string Reason) : ExperimentEvent;

/// <summary>Long work besides training reported how far it has come, such as a download of data from S3 (activity <c>download</c>).</summary>
public sealed record ProgressReported(RapidFire.Spec.Progress.ProgressUpdate Update) : ExperimentEvent;
