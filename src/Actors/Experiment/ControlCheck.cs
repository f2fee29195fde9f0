using RapidFire.Actors.Control;
using RapidFire.Actors.Scheduling;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using static RapidFire.Actors.Experiment.ExperimentProtocol;
using static RapidFire.Actors.Experiment.FitProtocol;

namespace RapidFire.Actors.Experiment;

/// <summary>
/// Whether an IC operation may be carried out in a fit: the pure rules (<see cref="ControlRules"/>) and, for a warm
/// clone with changed knobs, a comparison of the parent's and the clone's models, which builds them (so it is not part
/// of <see cref="FitState.Decide"/>). Nothing changes yet.
/// </summary>
public static class ControlCheck
{
    /// <summary>
    /// The verdict on <paramref name="check"/> in <paramref name="fit"/> (see <see cref="ControlRules"/>), with a clone's
    /// knobs checked against this node's <paramref name="devices"/>; a warm clone's model is built to compare architectures.
    /// </summary>
    public static ControlChecked Verdict(CheckControl check, FitState fit, TrainingServices services, int devices)
    {
        var op = check.Op;
        var run = fit.Runs.GetValueOrDefault(op.RunId);
        var refusal = ControlRules.Refusal(op, run, fit.OpsOn(op.RunId), fit.Runs.Keys.ToList());
        if (refusal is not null || op.Kind != ControlKind.Clone) return new ControlChecked(check.OpId, op, refusal, null);

        Config cfg;
        try
        {
            cfg = ControlRules.CloneConfig(run!.Config, op.Changes ?? new Dictionary<string, string>());
        }
        catch (ConfigException e)
        {
            return new ControlChecked(check.OpId, op, $"the clone's knobs are not valid: {string.Join("; ", e.Problems)}", null);
        }
        if (DataParallel.Problem($"run {check.NewRunId}", cfg, devices) is { } devicesProblem)
            return new ControlChecked(check.OpId, op, $"the clone's knobs are not valid: {devicesProblem}", null);
        if (op.Warm)
        {
            refusal = ControlRules.WarmRefusal(run.RunId, run.Config, cfg);
            if (refusal is null && (op.Changes?.Count ?? 0) > 0)
            {
                try
                {
                    refusal = WarmStartCheck.Architecture(run.RunId, services.Specs.Get(run.RunId, run.Config, Mode.Train), run.Config,
                        services.Specs.Get(check.NewRunId, cfg, Mode.Train), cfg, op.Changes!.Keys);
                }
                catch (Exception e) when (e is RapidFireException or RunFailureException)
                {
                    refusal = $"run {run.RunId}'s model cannot be built to compare with the clone's: {e.Message}";
                }
                if (refusal is not null) services.Specs.Remove(check.NewRunId);
            }
        }
        return new ControlChecked(check.OpId, op, refusal, refusal is null ? new RunDefinition(check.NewRunId, cfg, run.RunId, op.Warm) : null);
    }
}
