using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using RapidFire.Host.Api;
using RapidFire.Spec;

namespace RapidFire.Host.Dashboard;

/// <summary>
/// <c>GET /api/events</c>: the experiment's <see cref="IExperimentControl.Progress"/> as server-sent events, plus the
/// lines appended to <c>experiment.log</c>. Each connection subscribes for as long as it stays open; its events wait in
/// a bounded buffer, and a client too slow to keep up loses the oldest ones and is told so (a <c>gap</c> event) rather
/// than making the runtime wait or the server's memory grow.
/// </summary>
/// <remarks>
/// Events (<c>event:</c> name, <c>data:</c> one line of snake_case JSON): <c>hello</c> (<see cref="HelloEvent"/>, first,
/// once subscribed), <c>run</c> (<see cref="RunView"/>), <c>minibatch</c> (<see cref="MinibatchEvent"/>), <c>epoch</c>
/// (<see cref="EpochEvent"/>), <c>ic</c> (<see cref="ControlLogEntry"/>), <c>warning</c> (<see cref="WarningEvent"/>),
/// <c>pruned</c> (<see cref="PrunedEvent"/>), <c>log</c> (<see cref="LogEvent"/>), <c>gap</c> (<see cref="GapEvent"/>);
/// a comment line every <see cref="Heartbeat"/> keeps idle connections open and finds closed ones.
/// </remarks>
internal sealed class EventStream
{
    /// <summary>Events buffered per client before the oldest are dropped.</summary>
    public const int ClientBuffer = 4096;

    /// <summary>How often the log is looked at for new lines.</summary>
    public static readonly TimeSpan LogPoll = TimeSpan.FromMilliseconds(500);

    /// <summary>How often an idle stream sends a comment.</summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    private readonly DropOldestBuffer<ExperimentEvent> events = new(ClientBuffer);

    /// <summary>Serves one client until it disconnects or the server stops.</summary>
    public static async Task ServeAsync(HttpContext http, IExperimentControl control)
    {
        var stream = new EventStream();
        var stopping = http.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var done = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, stopping);
        http.Response.ContentType = "text/event-stream; charset=utf-8";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();

        control.Progress += stream.Enqueue;
        try
        {
            // Subscribed before the log's end is taken and before hello: what the client loads after hello is not missed.
            var log = new ExperimentLog.Follower(ExperimentLog.PathIn(control.Path));
            var fitting = (await control.RunsAsync(done.Token)).Fitting;
            await WriteAsync(http, "hello", new HelloEvent(control.Name, fitting), done.Token);
            await stream.PumpAsync(http, log, done.Token);
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
            // The client went away or the server stops: the response just ends.
        }
        finally
        {
            control.Progress -= stream.Enqueue;
        }
    }

    /// <summary>Runs on the runtime's threads: only buffers (never blocks; a full buffer drops its oldest).</summary>
    private void Enqueue(ExperimentEvent e)
    {
        if (e is RunChanged or MinibatchDone or EpochDone or ControlLogged or Warning or RunPrunedBy or ClusterNotice) events.Add(e);
    }

    private async Task PumpAsync(HttpContext http, ExperimentLog.Follower log, CancellationToken cancellation)
    {
        var lastWrite = DateTime.UtcNow;
        while (true)
        {
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellation))
            {
                wait.CancelAfter(LogPoll);
                try
                {
                    await events.WaitAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
                {
                    // Time to look at the log.
                }
            }
            var wrote = false;
            while (events.TryTake(out var e))
            {
                var (name, payload) = Payload(e);
                await WriteAsync(http, name, payload, cancellation, flush: false);
                wrote = true;
            }
            if (events.TakeDropped() is var lost and > 0)
            {
                await WriteAsync(http, "gap", new GapEvent(lost), cancellation, flush: false);
                wrote = true;
            }
            foreach (var line in log.ReadNew())
            {
                await WriteAsync(http, "log", new LogEvent(line), cancellation, flush: false);
                wrote = true;
            }
            if (!wrote && DateTime.UtcNow - lastWrite >= Heartbeat)
            {
                await http.Response.WriteAsync(": keepalive\n\n", cancellation);
                wrote = true;
            }
            if (wrote)
            {
                await http.Response.Body.FlushAsync(cancellation);
                lastWrite = DateTime.UtcNow;
            }
        }
    }

    /// <summary>The event's name and payload on the stream.</summary>
    public static (string Name, object Payload) Payload(ExperimentEvent e) => e switch
    {
        RunChanged changed => ("run", RunView.Of(changed.Run)),
        MinibatchDone { Minibatch: var m } => ("minibatch", new MinibatchEvent(m.RunId, m.Mode.ToName(), m.Epoch + 1, m.Chunk + 1, m.Step + 1, m.Numbers())),
        EpochDone { Epoch: var epoch } => ("epoch", new EpochEvent(epoch.RunId, epoch.Mode.ToName(), epoch.Epoch + 1, epoch.Metrics)),
        ControlLogged logged => ("ic", ControlLogEntry.Of(logged.Record)),
        Warning warning => ("warning", new WarningEvent(warning.Message)),
        RunPrunedBy pruned => ("pruned", new PrunedEvent(pruned.RunId, pruned.Reason)),
        ClusterNotice notice => ("warning", new WarningEvent($"cluster: {notice.Message}")),
        _ => throw new ArgumentOutOfRangeException(nameof(e), e, "not an event of the stream"),
    };

    private static async Task WriteAsync(HttpContext http, string name, object payload, CancellationToken cancellation, bool flush = true)
    {
        // Serialized JSON has no raw line ends (they are escaped inside strings): one data line per event.
        var text = new StringBuilder("event: ").Append(name).Append("\ndata: ")
            .Append(JsonSerializer.Serialize(payload, payload.GetType(), ApiJson.Options)).Append("\n\n").ToString();
        await http.Response.WriteAsync(text, cancellation);
        if (flush) await http.Response.Body.FlushAsync(cancellation);
    }
}

/// <summary>
/// A bounded buffer between one writer that must never wait (the runtime's event handlers) and one reader (a client's
/// connection): when it is full, an item added drops the oldest, and the drops are counted for the reader to report.
/// </summary>
/// <typeparam name="T">The items.</typeparam>
internal sealed class DropOldestBuffer<T>
{
    private readonly Channel<T> channel;
    private long dropped;

    /// <summary>A buffer of at most <paramref name="capacity"/> items.</summary>
    public DropOldestBuffer(int capacity) =>
        channel = Channel.CreateBounded<T>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ => Interlocked.Increment(ref dropped));

    /// <summary>Adds an item at once, dropping the oldest when full.</summary>
    public void Add(T item) => channel.Writer.TryWrite(item);

    /// <summary>Takes the oldest item, if any.</summary>
    public bool TryTake(out T item) => channel.Reader.TryRead(out item!);

    /// <summary>Completes when an item is there to take.</summary>
    public ValueTask<bool> WaitAsync(CancellationToken cancellation) => channel.Reader.WaitToReadAsync(cancellation);

    /// <summary>How many items were dropped since the last call.</summary>
    public long TakeDropped() => Interlocked.Exchange(ref dropped, 0);
}
