using System.Threading.Channels;

namespace RapidFire.Host.Export;

/// <summary>
/// What the exporters (MLflow, TensorBoard) share: a queue of the experiment events they take, flush markers in that
/// queue, and the subscription to <see cref="Experiment.Progress"/> that <c>Attach</c> makes and disposal undoes. The
/// subclass's loop reads <see cref="Inbox"/>: an <see cref="ExperimentEvent"/> or a flush marker
/// (<see cref="TaskCompletionSource"/>, completed once what came before it is done).
/// </summary>
public abstract class ExperimentExporter : IAsyncDisposable
{
    private Action? detach;

    /// <summary>The queue the subclass's loop reads (one reader).</summary>
    protected Channel<object> Inbox { get; } = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Whether the exporter needs <paramref name="e"/>.</summary>
    protected abstract bool Takes(ExperimentEvent e);

    /// <summary>Takes an experiment event (cheap: it is queued; a <see cref="Experiment.Progress"/> handler).</summary>
    public void Observe(ExperimentEvent e)
    {
        if (Takes(e)) Inbox.Writer.TryWrite(e);
    }

    /// <summary>Returns once everything observed so far is exported (or dropped after failures).</summary>
    public async Task FlushAsync(CancellationToken cancellation = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!Inbox.Writer.TryWrite(done)) return;
        await done.Task.WaitAsync(cancellation);
    }

    /// <inheritdoc />
    public abstract ValueTask DisposeAsync();

    /// <summary>Ends the subscription <see cref="Subscribe"/> made, once.</summary>
    protected void Detach() => Interlocked.Exchange(ref detach, null)?.Invoke();

    /// <summary>The exporter's lines go to the experiment's log (<c>experiment.log</c>) and to <paramref name="alsoLog"/>.</summary>
    protected static Action<string> LogTo(Experiment experiment, Action<string>? alsoLog) => line =>
    {
        experiment.Log(line);
        alsoLog?.Invoke(line);
    };

    /// <summary>Subscribes <paramref name="exporter"/> to <paramref name="experiment"/>'s events; disposal unsubscribes it.</summary>
    protected static T Subscribe<T>(T exporter, Experiment experiment) where T : ExperimentExporter
    {
        experiment.Progress += exporter.Observe;
        exporter.detach = () => experiment.Progress -= exporter.Observe;
        return exporter;
    }
}
