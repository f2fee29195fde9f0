using System.Collections.Concurrent;
using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Actors.Training;

/// <summary>
/// One instance of the user's MLSpec per (run, mode), on which <c>InitializeRun(miscPath, cfg, mode)</c> was called
/// exactly once. What <c>InitializeRun</c> builds must be read-only afterwards (the seed's rule): the instance is
/// used from several threads (data loaders, devices, metrics).
/// </summary>
/// <remarks>
/// <c>InitializeRun</c> sees its config through <see cref="Config.Tracked"/> when <paramref name="reads"/> is given: what
/// it builds from knobs can shape <c>RowPrep</c>'s output, so the prepared-example cache keys on those knobs too.
/// </remarks>
public sealed class SpecInstances(Func<MLSpec> create, Func<string> miscPath, Func<Mode, KnobReads>? reads = null)
{
    private readonly ConcurrentDictionary<(int RunId, Mode Mode), Lazy<MLSpec>> instances = new();

    /// <summary>
    /// The instance for the run and mode. A failing constructor or <c>InitializeRun</c> is a
    /// <see cref="RunFailureException"/> naming the method; the next call tries again.
    /// </summary>
    public MLSpec Get(int runId, Config cfg, Mode mode)
    {
        var lazy = instances.GetOrAdd((runId, mode), _ => new Lazy<MLSpec>(() =>
        {
            var spec = SpecCall.Run("constructor", create);
            SpecCall.Run("InitializeRun", () => spec.InitializeRun(miscPath(), reads is null ? cfg : cfg.Tracked(reads(mode)), mode));
            return spec;
        }));
        try
        {
            return lazy.Value;
        }
        catch
        {
            instances.TryRemove(new KeyValuePair<(int, Mode), Lazy<MLSpec>>((runId, mode), lazy));
            throw;
        }
    }

    /// <summary>Forgets a run's instances (it ended).</summary>
    public void Remove(int runId)
    {
        foreach (var mode in ModeNames.All) instances.TryRemove((runId, mode), out _);
    }
}

/// <summary>A run's failure, thrown inside a device or loader and turned into a message by the actor.</summary>
public sealed class RunFailureException(RunFailure failure, Exception? inner = null) : Exception(failure.ToString(), inner)
{
    /// <summary>What failed.</summary>
    public RunFailure Failure { get; } = failure;

    /// <summary>
    /// The failure an exception stands for: its own for a <see cref="RunFailureException"/>, else a runtime fault (a bug
    /// of ours, or of the machine) that still fails only the run it happened in.
    /// </summary>
    public static RunFailure Of(Exception e) =>
        e is RunFailureException failure ? failure.Failure : new RunFailure("runtime", $"{e.GetType().Name}: {e.Message}");

    /// <summary>The runtime steps whose native faults are transient (<see cref="RunFailure.RuntimeSteps"/> has them all).</summary>
    private static readonly HashSet<string> TransientSteps = ["optimizer", "loss.backward", "lr_scheduler", "device", "runtime"];

    /// <summary>
    /// Whether <paramref name="e"/> is a native libtorch error (<see cref="System.Runtime.InteropServices.ExternalException"/>)
    /// raised outside the user's MLSpec code, in a runtime step (the optimizer step, the backward pass, the scheduler,
    /// a device copy): a transient fault (a CUDA hiccup, a race in native code), which the fit retries once from the
    /// run's last checkpoint. An error in an MLSpec method is the spec's and is not retried.
    /// </summary>
    public static bool IsTransient(Exception e) => e switch
    {
        RunFailureException { InnerException: System.Runtime.InteropServices.ExternalException } failure => TransientSteps.Contains(failure.Failure.Method),
        System.Runtime.InteropServices.ExternalException => true,
        _ => false,
    };
}

/// <summary>Calls into user code, turning any exception into a <see cref="RunFailureException"/> that names the method.</summary>
public static class SpecCall
{
    /// <summary>Runs <paramref name="call"/>, attributing a failure to <paramref name="method"/> (or to the method a
    /// <see cref="SpecException"/> names).</summary>
    public static T Run<T>(string method, Func<T> call)
    {
        try
        {
            return call();
        }
        catch (RunFailureException)
        {
            throw;
        }
        catch (SpecException e)
        {
            throw new RunFailureException(new RunFailure(e.Method, Unprefixed(e)), e);
        }
        catch (Exception e)
        {
            var inner = e is System.Reflection.TargetInvocationException { InnerException: { } ie } ? ie : e;
            throw new RunFailureException(new RunFailure(method, $"{inner.GetType().Name}: {inner.Message}"), inner);
        }
    }

    /// <summary>Runs <paramref name="call"/>, attributing a failure to <paramref name="method"/>.</summary>
    public static void Run(string method, Action call) => Run(method, () =>
    {
        call();
        return 0;
    });

    private static string Unprefixed(SpecException e)
    {
        var prefix = $"MLSpec.{e.Method}: ";
        return e.Message.StartsWith(prefix, StringComparison.Ordinal) ? e.Message[prefix.Length..] : e.Message;
    }
}
