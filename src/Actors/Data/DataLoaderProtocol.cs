using RapidFire.Actors.Runs;
using RapidFire.Spec;

namespace RapidFire.Actors.Data;

/// <summary>Messages of the DataLoaderActors.</summary>
public static class DataLoaderProtocol
{
    /// <summary>
    /// Prepare one minibatch: <c>RowPrep</c> for each row (positions in the partition), then <c>CollateFn</c>; then,
    /// for a CUDA <paramref name="TorchDevice"/>, copy it there from pinned host memory, so the copy overlaps the
    /// device's work on the minibatch before.
    /// </summary>
    public sealed record PrepareMinibatch(MinibatchKey Key, int RunId, Config Config, Mode Mode, int[] Rows, string TorchDevice = "cpu");

    /// <summary>The minibatch waits in the <see cref="MinibatchExchange"/> under <paramref name="Key"/>.</summary>
    public sealed record MinibatchReady(MinibatchKey Key);

    /// <summary>The minibatch could not be prepared.</summary>
    public sealed record MinibatchFailed(MinibatchKey Key, RunFailure Failure);

    /// <summary>
    /// An MLSpec call preparing the minibatch has run past the loader's stall limit (<paramref name="What"/>: which
    /// call, on which row, for how long). The other runs' minibatches go on on other threads; this one is still awaited.
    /// </summary>
    public sealed record MinibatchStalled(MinibatchKey Key, string What);

    /// <summary>What the node's <see cref="PreparedExamples"/> cached, or could not cache (published on the event stream).</summary>
    public sealed record PrepCacheNoted(string Message);
}
