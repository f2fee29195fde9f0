using RapidFire.Host.Api;

namespace RapidFire.Host.Dashboard;

// The JSON documents the dashboard's endpoints add to the HTTP API (snake_case on the wire, ApiJson.Options), and the
// payloads of its event stream. Run changes and IC log lines travel as the API's own RunView and ControlLogEntry.

/// <summary><c>GET /api/status</c>: the experiment and what it is doing now.</summary>
/// <param name="Name">The experiment's name.</param>
/// <param name="Fitting">Whether a fit is in progress.</param>
/// <param name="Operation">While fitting: <c>fit</c> or <c>resume</c> (from <c>experiment.log</c>); null otherwise.</param>
/// <param name="StartedUtc">When the current operation started, or the last one when none runs; null when the log does not say.</param>
/// <param name="EndedUtc">When the last operation ended, while none runs; null otherwise.</param>
/// <param name="Summary">The log line of the last operation's start or end (<c>fit ended: run 1 Completed (epochs), ...</c>).</param>
/// <param name="ServerTimeUtc">The server's clock, so that a page counts elapsed time without trusting its own.</param>
public sealed record StatusView(string Name, bool Fitting, string? Operation, DateTime? StartedUtc, DateTime? EndedUtc, string? Summary,
    DateTime ServerTimeUtc);

/// <summary><c>GET /api/log?tail=N</c>: the last lines of <c>experiment.log</c>, oldest first.</summary>
/// <param name="Lines">The lines, each with its time stamp.</param>
public sealed record LogView(IReadOnlyList<string> Lines);

/// <summary>The <c>minibatch</c> event: one minibatch's numbers as it is trained or validated (1-based positions, as <see cref="MinibatchPoint"/>).</summary>
/// <param name="RunId">The run.</param>
/// <param name="Mode">train or validation.</param>
/// <param name="Epoch">The epoch, from 1.</param>
/// <param name="Chunk">The chunk, from 1 (1 in validation).</param>
/// <param name="Step">The minibatch's place in its epoch's pass over the partition, from 1.</param>
/// <param name="Values">Loss, named metrics and tensor metrics by name.</param>
public sealed record MinibatchEvent(int RunId, string Mode, int Epoch, int Chunk, int Step, IReadOnlyDictionary<string, double> Values);

/// <summary>The <c>epoch</c> event: an epoch's metrics of one partition, closed (as <see cref="EpochPoint"/>).</summary>
/// <param name="RunId">The run.</param>
/// <param name="Mode">train or validation.</param>
/// <param name="Epoch">The epoch, from 1.</param>
/// <param name="Values">Its metrics by name.</param>
public sealed record EpochEvent(int RunId, string Mode, int Epoch, IReadOnlyDictionary<string, double> Values);

/// <summary>The <c>warning</c> event.</summary>
/// <param name="Message">What went wrong, naming the thing at fault.</param>
public sealed record WarningEvent(string Message);

/// <summary>The <c>pruned</c> event: a pruning rule stopped a run.</summary>
/// <param name="RunId">The run.</param>
/// <param name="Reason">The rule's reason.</param>
public sealed record PrunedEvent(int RunId, string Reason);

/// <summary>The <c>log</c> event: a line appended to <c>experiment.log</c>.</summary>
/// <param name="Line">The line, with its time stamp.</param>
public sealed record LogEvent(string Line);

/// <summary>The <c>gap</c> event: the client read too slowly and this many events were dropped; it should reload the history.</summary>
/// <param name="Dropped">Events dropped since the last gap event.</param>
public sealed record GapEvent(long Dropped);

/// <summary>The <c>hello</c> event, first on every stream: the client is subscribed; what it loads now cannot miss a later event.</summary>
/// <param name="Name">The experiment's name.</param>
/// <param name="Fitting">Whether a fit is in progress.</param>
public sealed record HelloEvent(string Name, bool Fitting);
