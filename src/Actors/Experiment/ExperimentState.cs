using System.Collections.Immutable;
using RapidFire.Actors.Control;
using static RapidFire.Actors.Experiment.ExperimentProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>One fit of an experiment: its definition, its runs and whether it ended.</summary>
public sealed record FitRecord(FitDefinition Definition, ImmutableList<RunDefinition> Runs, bool Ended, bool Cancelled);

/// <summary>
/// The journaled state of an experiment, as a pure immutable value folded from its events: its fits and runs.
/// </summary>
public sealed record ExperimentState
{
    /// <summary>The experiment's name (empty until created).</summary>
    public string Name { get; init; } = "";

    /// <summary>When it was created.</summary>
    public DateTime? CreatedUtc { get; init; }

    /// <summary>Whether it was ended.</summary>
    public bool Ended { get; init; }

    /// <summary>Its fits, in order.</summary>
    public ImmutableList<FitRecord> Fits { get; init; } = [];

    /// <summary>The IC log: every operation asked for, oldest first, with how it ended (so far).</summary>
    public ImmutableList<ControlRecord> Controls { get; init; } = [];

    /// <summary>The id the next IC operation gets.</summary>
    public int NextOpId => Controls.Count + 1;

    /// <summary>Operations that were accepted and have not taken effect yet (a resume carries them out).</summary>
    public IEnumerable<ControlRecord> Unresolved => Controls.Where(c => c.Status == ControlStatus.Pending);

    /// <summary>The fit that started and has not ended (a crash or a full disk interrupted it), if any.</summary>
    public FitRecord? Unfinished => Fits.LastOrDefault(f => !f.Ended);

    /// <summary>
    /// The fit a resume continues: the unfinished one, else the last fit when it was cancelled (Ctrl+C): its runs that
    /// the cancel stopped go on from where they stopped.
    /// </summary>
    public FitRecord? Resumable => Unfinished ?? (Fits.LastOrDefault() is { Ended: true, Cancelled: true } cancelled ? cancelled : null);

    /// <summary>The id the next run gets: run ids are unique in the experiment.</summary>
    public int NextRunId => Fits.SelectMany(f => f.Runs).Select(r => r.RunId)
        .Concat(Controls.Select(c => c.NewRunId).OfType<int>()) // a dropped clone's id is not handed out again
        .DefaultIfEmpty(0).Max() + 1;

    /// <summary>The id the next fit gets.</summary>
    public int NextFitId => Fits.Count + 1;

    /// <summary>The state after <paramref name="e"/>.</summary>
    public ExperimentState Apply(IExperimentEvent e) => e switch
    {
        ExperimentCreated c => this with { Name = c.Name, CreatedUtc = c.CreatedUtc },
        FitStarted f => this with { Fits = Fits.Add(new FitRecord(f.Definition, [], false, false)) },
        RunsAdded r => Update(r.FitId, fit => fit with { Runs = fit.Runs.AddRange(r.Runs) }),
        FitEnded f => Update(f.FitId, fit => fit with { Ended = true, Cancelled = f.Cancelled }),
        ExperimentEnded => this with { Ended = true },
        ControlRequested r => (r.NewRun is { } clone ? Update(r.FitId, fit => fit with { Runs = fit.Runs.Add(clone) }) : this) with
        {
            Controls = Controls.Add(new ControlRecord(r.OpId, r.RequestedUtc, r.Op, ControlStatus.Pending, "pending", r.NewRun?.RunId, null)),
        },
        ControlResolved r => Resolve(r),
        _ => throw new ArgumentOutOfRangeException(nameof(e), e, "unknown experiment event"),
    };

    /// <summary>An operation's outcome; a clone that was dropped before it started leaves its fit.</summary>
    private ExperimentState Resolve(ControlResolved r)
    {
        var record = Controls.Find(c => c.OpId == r.OpId);
        if (record is null) return this;
        var fits = r.Status == ControlStatus.Dropped && record.NewRunId is { } dropped
            ? Fits.Select(f => f with { Runs = f.Runs.RemoveAll(run => run.RunId == dropped) }).ToImmutableList()
            : Fits;
        return this with
        {
            Fits = fits,
            Controls = Controls.Replace(record, record with { Status = r.Status, Outcome = r.Outcome, ResolvedUtc = r.ResolvedUtc }),
        };
    }

    private ExperimentState Update(int fitId, Func<FitRecord, FitRecord> change)
    {
        var index = Fits.FindIndex(f => f.Definition.FitId == fitId);
        return index < 0 ? this : this with { Fits = Fits.SetItem(index, change(Fits[index])) };
    }
}
