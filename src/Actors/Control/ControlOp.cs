using System.Globalization;
using System.Text.Json.Serialization;

namespace RapidFire.Actors.Control;

/// <summary>What an interactive-control operation does to a run.</summary>
public enum ControlKind
{
    /// <summary>Stop the run at its next chunk boundary; it keeps its progress and can be resumed.</summary>
    Stop,
    /// <summary>Continue a stopped run from where it stopped.</summary>
    Resume,
    /// <summary>End the run and hide it from the live views; its journal and files stay.</summary>
    Delete,
    /// <summary>A new run with the parent's knobs plus the changes given; warm: it starts from the parent's trained state.</summary>
    Clone,
}

/// <summary>
/// An interactive-control (IC) operation on run <paramref name="RunId"/>. For <see cref="ControlKind.Clone"/>,
/// <paramref name="Changes"/> maps knob paths (<c>optimizer.args.lr</c>, <c>hidden</c>; <c>optimizer.lr</c> is accepted
/// for <c>optimizer.args.lr</c>) to values written as JSON (<c>0.01</c>, <c>"cnn"</c>; text that is not JSON is a
/// string), and <paramref name="Warm"/> asks for a copy of the parent's model, optimizer and scheduler state.
/// </summary>
public sealed record ControlOp(ControlKind Kind, int RunId, IReadOnlyDictionary<string, string>? Changes = null, bool Warm = false)
{
    /// <summary>
    /// Why an automatic operation was asked for, by whom (<c>pbt at epoch 2: run 3 ... replaced by a warm clone of run
    /// 1</c>); null for a user's. The IC log shows it.
    /// </summary>
    public string? Origin { get; init; }

    /// <summary>
    /// For PBT's warm clone: the run it replaces, stopped (ended by <c>pbt</c>) once the clone is accepted; so a refused
    /// clone leaves it training, and a resumed fit that carries out the clone stops it too.
    /// </summary>
    public int? Replaces { get; init; }

    /// <summary>A stop of <paramref name="runId"/>.</summary>
    public static ControlOp Stop(int runId) => new(ControlKind.Stop, runId);

    /// <summary>A resume of <paramref name="runId"/>.</summary>
    public static ControlOp Resume(int runId) => new(ControlKind.Resume, runId);

    /// <summary>A delete of <paramref name="runId"/>.</summary>
    public static ControlOp Delete(int runId) => new(ControlKind.Delete, runId);

    /// <summary>A clone of <paramref name="runId"/> with <paramref name="changes"/>.</summary>
    public static ControlOp CloneOf(int runId, IReadOnlyDictionary<string, string> changes, bool warm = false) =>
        new(ControlKind.Clone, runId, changes, warm);

    /// <summary>The operation's name, as the IC log and the HTTP API spell it: stop, resume, delete, clone, clone-warm.</summary>
    [JsonIgnore]
    public string Name => Kind switch
    {
        ControlKind.Clone when Warm => "clone-warm",
        var kind => kind.ToString().ToLowerInvariant(),
    };

    /// <summary>The arguments for the IC log: <c>optimizer.args.lr=0.01 hidden=64</c>, or empty; a secret knob's value is masked (<c>api_key=***</c>).</summary>
    [JsonIgnore]
    public string Arguments => Changes is null ? "" : string.Join(" ", Changes.Select(kv => $"{kv.Key}={RapidFire.Spec.SecretMask.MaskText(kv.Key, kv.Value)}"));

    /// <inheritdoc />
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Name} run {RunId}{(Arguments.Length == 0 ? "" : " " + Arguments)}");
}

/// <summary>Where an operation stands.</summary>
public enum ControlStatus
{
    /// <summary>Refused: the message says why. Nothing changed.</summary>
    Rejected,
    /// <summary>Accepted; it takes effect at the run's next chunk boundary.</summary>
    Pending,
    /// <summary>It took effect.</summary>
    Applied,
    /// <summary>Accepted, but by the time it could take effect the run had moved on (it completed, say); nothing changed.</summary>
    Dropped,
}

/// <summary>
/// The answer to an operation: its id in the experiment's IC log, where it stands, a message for the user, and for
/// a clone the new run's id.
/// </summary>
public sealed record ControlOutcome(int OpId, ControlOp Op, ControlStatus Status, string Message, int? NewRunId = null);

/// <summary>One line of the IC log: when an operation was asked for, what it was, and how it ended (so far).</summary>
public sealed record ControlRecord(int OpId, DateTime RequestedUtc, ControlOp Op, ControlStatus Status, string Outcome, int? NewRunId,
    DateTime? ResolvedUtc);
