using RapidFire.Spec;
using RapidFire.Spec.Compilation;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;

namespace RapidFire.Host;

/// <summary>
/// The three inputs of an experiment (spec file, data handle, config group), checked together before anything
/// runs. Every fault of every input is collected; nothing stops at the first.
/// </summary>
public sealed class ExperimentInputs
{
    private ExperimentInputs(CompiledSpec? spec, DataHandle? data, ConfigGroup? group, IReadOnlyList<Config> runs,
        IReadOnlyList<string> problems, IReadOnlyList<string> summary)
    {
        Spec = spec;
        Data = data;
        Group = group;
        Runs = runs;
        Problems = problems;
        Summary = summary;
    }

    /// <summary>The compiled spec, when it compiled.</summary>
    public CompiledSpec? Spec { get; }

    /// <summary>The data handle, when it could be read.</summary>
    public DataHandle? Data { get; }

    /// <summary>The config group, when it could be read.</summary>
    public ConfigGroup? Group { get; }

    /// <summary>The leaf configs, in run order (run 1 first), when the group expanded.</summary>
    public IReadOnlyList<Config> Runs { get; }

    /// <summary>Every fault found, one line each; empty when all three inputs are valid.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>What was checked, one line each (spec class, rows per partition, run count).</summary>
    public IReadOnlyList<string> Summary { get; }

    /// <summary>Compiles the spec, reads every partition's ESF header and ids, and expands the config group.</summary>
    /// <param name="specPath">The spec file.</param>
    /// <param name="dataPath">The data handle file.</param>
    /// <param name="configPath">The config group file.</param>
    /// <param name="storage">Where the data handle's files are read (default: local files only); object files are not
    /// downloaded here.</param>
    public static ExperimentInputs Check(string specPath, string dataPath, string configPath, IDataStorage? storage = null)
    {
        var problems = new List<string>();
        var summary = new List<string>();

        // The spec compiles (or loads from the compile cache) on another core while the data is read.
        var compiling = Task.Run(() => SpecCompiler.CompileFile(specPath));

        DataHandle? data = null;
        try
        {
            data = DataHandle.Load(dataPath);
            if (!data.HasPartition(Mode.Train))
                problems.Add($"{dataPath}: the data handle has no 'train' locator, which run_fit needs");
            var counts = new List<string>();
            var errors = new List<string>();
            foreach (var mode in data.Partitions.Keys)
            {
                try
                {
                    counts.Add($"{mode.ToName()} {data.Open(mode, storage, fetchObjects: false).RowCount} rows");
                }
                catch (DataException e)
                {
                    errors.AddRange(e.Problems);
                }
            }
            // An unusable objects locator is reported by every partition: list it once.
            problems.AddRange(errors.Distinct());
            if (errors.Count == 0) summary.Add("data: " + string.Join(", ", counts));
        }
        catch (RapidFireException e)
        {
            problems.AddRange(e.Problems);
        }

        CompiledSpec? spec = null;
        try
        {
            spec = compiling.GetAwaiter().GetResult();
            summary.Insert(0, $"spec: {spec.SpecType.Name} from {Path.GetFileName(specPath)}");
        }
        catch (RapidFireException e)
        {
            problems.InsertRange(0, e.Problems);
        }

        IReadOnlyList<Config> runs = [];
        ConfigGroup? group = null;
        try
        {
            group = ConfigGroup.Load(configPath);
            runs = group.Expand();
            summary.Add($"configs: {runs.Count} run{(runs.Count == 1 ? "" : "s")}");
        }
        catch (RapidFireException e)
        {
            problems.AddRange(e.Problems);
        }

        return new ExperimentInputs(spec, data, group, runs, problems, summary);
    }
}
