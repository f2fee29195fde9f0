using System.Diagnostics;

namespace RapidFire.Actors.Data;

/// <summary>
/// Which MLSpec call a loader thread is in, and since when: what the <see cref="DataLoaderActor"/> reads to find a
/// stuck <c>RowPrep</c> (naming its row id) while the thread is still inside it. A thread without a watch records
/// nothing.
/// </summary>
public sealed class CallWatch
{
    /// <summary>One call in progress: the MLSpec method, the row it prepares (<c>RowPrep</c>), when it began.</summary>
    public sealed record Call(string Method, long? RowId, long StartedTimestamp)
    {
        /// <summary>How long the call has run.</summary>
        public TimeSpan Elapsed => Stopwatch.GetElapsedTime(StartedTimestamp);

        /// <summary>The call as a phrase: <c>RowPrep (row id 17)</c>.</summary>
        public override string ToString() => RowId is { } id ? $"{Method} (row id {id})" : Method;
    }

    [ThreadStatic] private static CallWatch? current;
    private volatile Call? call;

    /// <summary>Watches the calls of the current thread from now on.</summary>
    public void Attach() => current = this;

    /// <summary>The call in progress, if any.</summary>
    public Call? Current => call;

    /// <summary>The current thread enters <paramref name="method"/> (on <paramref name="rowId"/>); returns what to restore after it.</summary>
    public static Call? Enter(string method, long? rowId = null)
    {
        if (current is not { } watch) return null;
        var before = watch.call;
        watch.call = new Call(method, rowId, Stopwatch.GetTimestamp());
        return before;
    }

    /// <summary>The current thread left its call, back in <paramref name="before"/> (what <see cref="Enter"/> returned).</summary>
    public static void Leave(Call? before)
    {
        if (current is { } watch) watch.call = before;
    }
}
