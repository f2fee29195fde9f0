namespace RapidFire.Spec.Data;

/// <summary>
/// Builds a <see cref="DataHandle"/> in code, the same settings as the JSON form:
/// <code>
/// var handle = DataHandle.Builder(dataDir).Train("train.csv").Validation("validation.csv").Fraction(0.1).Build();
/// </code>
/// Relative paths resolve against the builder's base folder, which is also the default <c>objects</c> locator.
/// </summary>
public sealed class DataHandleBuilder
{
    private readonly string baseDirectory;
    private readonly Dictionary<Mode, string> partitions = [];
    private string? objects, misc, models, source;
    private List<string>? downloadColumns;
    private double fraction = 1.0;
    private int seed = DataHandle.DefaultSeed;

    /// <summary>Starts a data handle whose relative paths resolve against <paramref name="baseDirectory"/>.</summary>
    public DataHandleBuilder(string baseDirectory) => this.baseDirectory = Path.GetFullPath(baseDirectory);

    /// <summary>Sets the ESF of a partition.</summary>
    public DataHandleBuilder Partition(Mode mode, string locator)
    {
        partitions[mode] = locator;
        return this;
    }

    /// <summary>Sets the ESF of the train partition.</summary>
    public DataHandleBuilder Train(string locator) => Partition(Mode.Train, locator);

    /// <summary>Sets the ESF of the validation partition.</summary>
    public DataHandleBuilder Validation(string locator) => Partition(Mode.Validation, locator);

    /// <summary>Sets the ESF of the test partition.</summary>
    public DataHandleBuilder Test(string locator) => Partition(Mode.Test, locator);

    /// <summary>Sets the ESF of the predict partition.</summary>
    public DataHandleBuilder Predict(string locator) => Partition(Mode.Predict, locator);

    /// <summary>Sets the folder object paths are relative to (default: the base folder).</summary>
    public DataHandleBuilder Objects(string locator) { objects = locator; return this; }

    /// <summary>Sets the folder of miscellaneous files.</summary>
    public DataHandleBuilder Misc(string locator) { misc = locator; return this; }

    /// <summary>Sets the folder of model checkpoints.</summary>
    public DataHandleBuilder Models(string locator) { models = locator; return this; }

    /// <summary>Lists the object columns explicitly (none at all when empty) instead of detecting them.</summary>
    public DataHandleBuilder DownloadColumns(params IEnumerable<string> columns) { downloadColumns = columns.ToList(); return this; }

    /// <summary>Sets the fraction of every partition's rows to use, in (0, 1].</summary>
    public DataHandleBuilder Fraction(double value) { fraction = value; return this; }

    /// <summary>Sets the seed of the sample.</summary>
    public DataHandleBuilder Seed(int value) { seed = value; return this; }

    /// <summary>Sets the name errors give the data handle (default <see cref="DataHandle.DefaultSource"/>).</summary>
    public DataHandleBuilder Source(string name) { source = name; return this; }

    /// <summary>Builds the data handle.</summary>
    /// <exception cref="DataException">A setting is invalid (all faults listed, each naming the setting).</exception>
    public DataHandle Build()
    {
        var name = source ?? DataHandle.DefaultSource;
        var errors = new List<DataError>();
        Locator? Parse(string key, string? text)
        {
            if (text is null)
                return null;
            try
            {
                return Locator.Parse(text, baseDirectory);
            }
            catch (ArgumentException e)
            {
                errors.Add(new DataError(name, null, $"locators.{key}: {e.Message.Split(" (Parameter")[0]}"));
                return null;
            }
        }
        var parsed = new Dictionary<Mode, Locator>();
        foreach (var (mode, text) in partitions)
            if (Parse(mode.ToName(), text) is { } locator)
                parsed[mode] = locator;
        var objectsLocator = Parse("objects", objects) ?? new LocalLocator(baseDirectory);
        var miscLocator = Parse("misc", misc);
        var modelsLocator = Parse("models", models);
        if (errors.Count > 0)
            throw new DataException(errors);
        return new DataHandle(parsed, objectsLocator, miscLocator, modelsLocator, downloadColumns, fraction, seed, name);
    }
}
