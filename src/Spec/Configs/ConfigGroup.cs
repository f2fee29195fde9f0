using System.Text.Json;

namespace RapidFire.Spec.Configs;

/// <summary>
/// A group of configs given to <c>run_fit</c>: a <see cref="GridSearch"/>, a <see cref="RandomSearch"/> or a
/// <see cref="ConfigList"/> of hand-picked configs and groups. It is checked as a whole before anything runs
/// (<see cref="Validate"/>) and expands to leaf <see cref="Config"/>s, one per run (<see cref="Expand"/>).
/// </summary>
public abstract class ConfigGroup
{
    private protected ConfigGroup() { }

    /// <summary>
    /// Every fault of the group, each once, each at its knob path as the JSON format spells it (such as
    /// <c>train.optimizer.args.lr</c>, <c>named_metrics[1]</c>, <c>configs[2].train.batch_size</c>); empty when
    /// the group can be expanded.
    /// </summary>
    public IReadOnlyList<ConfigError> Validate()
    {
        var errors = new ErrorSink();
        CollectGroup(errors);
        return errors.Errors;
    }

    /// <summary>
    /// The automatic pruning rule that judges all the runs of this group, or <see langword="null"/> for none. Only
    /// the group given to the fit may carry one: on an item of a <see cref="ConfigList"/> it is an error at
    /// <c>[i].pruning</c>.
    /// </summary>
    public PruningRule? Pruning { get; private set; }

    /// <summary>
    /// The Population Based Training that steers this group's runs (<c>"search": "pbt"</c>, see <see cref="PbtSearch"/>),
    /// or <see langword="null"/>.
    /// </summary>
    public virtual PbtSettings? Pbt => null;

    /// <summary>
    /// A copy of this group judged by <paramref name="rule"/> (<see langword="null"/>: no pruning); this group is
    /// unchanged. The rule's faults are reported by <see cref="Validate"/> at <c>pruning.*</c>.
    /// </summary>
    public ConfigGroup WithPruning(PruningRule? rule)
    {
        var copy = (ConfigGroup)MemberwiseClone(); // every field is immutable, so a shallow copy is a true copy
        copy.Pruning = rule;
        return copy;
    }

    /// <summary>
    /// The leaf configs, in a deterministic order. A group with faults is a <see cref="ConfigException"/> listing
    /// all of them (see <see cref="Validate"/>).
    /// </summary>
    public IReadOnlyList<Config> Expand()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new ConfigException(errors);
        return ExpandValid().ToList().AsReadOnly();
    }

    /// <summary>The group in the JSON format of <see cref="FromJson"/> (indented); reading it back gives the same leaves.</summary>
    /// <exception cref="ConfigException">A value that the JSON format cannot express, such as a knob inside a C# array.</exception>
    public string ToJson() => ConfigJson.Write(this);

    /// <summary>
    /// Reads a config group from JSON and validates it: either a valid group comes back, or a
    /// <see cref="ConfigException"/> lists every fault at once, each at its knob path.
    /// </summary>
    /// <param name="json">The document.</param>
    /// <param name="sourceName">The file (or other source) it came from, named in syntax errors.</param>
    /// <remarks>
    /// <para>The document is a <b>config object</b>, or a JSON array of them (a hand-picked list). Comments and
    /// trailing commas are allowed. A config object:</para>
    /// <code>
    /// { "search": "grid",
    ///   "user_knobs": { "model_type": ["mlp", "cnn"], "hidden": 128 },
    ///   "train": { "epochs": 3, "batch_size": [32, 64],
    ///              "optimizer": { "name": "Adam", "args": { "lr": [0.001, 0.003] } },
    ///              "lr_scheduler": { "name": "StepLR", "args": { "step_size": 1, "gamma": 0.9 } } },
    ///   "named_metrics": ["top1_accuracy", "top3_accuracy"] }
    /// </code>
    /// <list type="bullet">
    /// <item><c>"search"</c>: <c>"grid"</c> (the default), <c>"random"</c>, <c>"list"</c> or <c>"pbt"</c>
    /// (Population Based Training: the grid is the initial population, steered by the top-level <c>"pbt"</c> block, with
    /// an optional <c>"seed"</c>; see <see cref="PbtSearch"/> and <see cref="PbtSettings"/>).
    /// <c>"grid"</c> expands every combination of the List knobs, the first knob in document order varying slowest
    /// (the example gives 2 × 2 × 2 = 8 configs). <c>"random"</c> also takes <c>"samples"</c> (required, a whole
    /// number &gt;= 1: how many configs to draw) and <c>"seed"</c> (optional, a whole number, default 0): the same
    /// seed draws the same configs. <c>"list"</c> takes only <c>"configs"</c>, an array of config objects (each with
    /// its own <c>"search"</c>, grid when absent), expanded in order and concatenated; a top-level JSON array means
    /// the same.</item>
    /// <item><c>"user_knobs"</c>: the user's knobs, in the order the run's <c>cfg</c> shows them. A name that is a
    /// reserved key (<c>epochs</c>, <c>batch_size</c>, <c>accumulate_grad_batches</c>, <c>max_grad_norm</c>,
    /// <c>optimizer</c>, <c>lr_scheduler</c>, <c>named_metrics</c>) is an error.</item>
    /// <item><c>"train"</c>: <c>"epochs"</c> and <c>"batch_size"</c> (required, whole numbers &gt;= 1),
    /// <c>"accumulate_grad_batches"</c> (optional, a whole number &gt;= 1: one optimizer step per that many minibatches),
    /// <c>"max_grad_norm"</c> (optional, a number &gt; 0: the total gradient norm is clipped to it before each step),
    /// <c>"optimizer"</c> (required, <c>{"name": ..., "args": {...}}</c>, any optimizer of
    /// <c>TorchSharp.torch.optim</c> with PyTorch-style argument names, see <see cref="Optimizers"/>) and
    /// <c>"lr_scheduler"</c> (optional, the same shape, any scheduler of <c>torch.optim.lr_scheduler</c>, see
    /// <see cref="LrSchedulers"/>; <c>null</c> means none). Any other key is an error.</item>
    /// <item><c>"named_metrics"</c>: a plain array of metric names such as <c>"top1_accuracy"</c>. It is a list by
    /// nature, so here an array is the literal list, not a knob.</item>
    /// <item><c>"pruning"</c> (optional; <c>null</c> means none): the automatic pruning rule that judges all the runs
    /// of the group, a <see cref="PruningRule"/>:
    /// <c>{"rule": "sha", "metric": "top1_accuracy", "mode": "max", "resource": "epochs", "eta": 2, "min_resource": 1}</c>.
    /// <c>"rule"</c> (required) is <c>"sha"</c>, <c>"asha"</c> or <c>"median"</c>; <c>"metric"</c> (required) names
    /// the metric it ranks runs by; <c>"mode"</c> (required) is <c>"max"</c> or <c>"min"</c>; <c>"resource"</c> is
    /// <c>"epochs"</c> (the default) or <c>"chunks"</c>; <c>"eta"</c> (sha and asha only, a whole number &gt;= 2,
    /// default 3); <c>"min_resource"</c> (a whole number &gt;= 1, default 1: the first rung of sha and asha, the grace
    /// period of median); <c>"min_samples"</c> (median only, a whole number &gt;= 1, default 3). Any other key, or a
    /// key the rule does not use, is an error. Only the document's top-level object carries it, with any
    /// <c>"search"</c> (a list too: <c>{"search": "list", "configs": [...], "pruning": {...}}</c>); inside a config of
    /// a list it is an error at <c>configs[i].pruning</c> (or <c>[i].pruning</c>), so a top-level JSON array has
    /// none.</item>
    /// <item>Any other top-level key is an error, so typos never pass silently.</item>
    /// </list>
    /// <para><b>Values.</b> Anywhere else, a value may be a knob, at any depth (a user knob, a value inside a map of
    /// user knobs, epochs, batch_size, an optimizer argument or the optimizer's name, a whole optimizer, the whole
    /// scheduler):</para>
    /// <list type="bullet">
    /// <item>A JSON array is a <b>List knob</b>: <c>[32, 64]</c>. It must not be empty. An option may be an object
    /// holding further knobs, such as a whole optimizer <c>[{"name": "Adam", ...}, {"name": "SGD", ...}]</c>, or
    /// <c>null</c> for the scheduler, meaning "no scheduler". An array directly inside a List knob is one literal
    /// option: <c>"layers": [[64, 32], [128]]</c> offers two lists.</item>
    /// <item><c>{"range": [start, end], "dtype": "float", "log": false, "step": 0.1}</c> is a <b>Range knob</b>, for
    /// random search only (in a grid it is an error). <c>"dtype"</c> is <c>"int"</c> or <c>"float"</c> (default
    /// float); <c>"log"</c> (default false) samples log-uniformly and needs start &gt; 0; <c>"step"</c> (optional,
    /// &gt; 0) snaps values to start + k*step within the bounds. start must be &lt;= end; an int range needs whole
    /// numbers. Any other key in a range object is an error.</item>
    /// <item><c>{"value": ...}</c> is a <b>literal</b>: what it holds is taken as is, never as knobs:
    /// <c>"layers": {"value": [64, 32]}</c> is one list value, and so is an optimizer or scheduler argument that is a
    /// list by nature: <c>"betas": {"value": [0.9, 0.999]}</c>, <c>"milestones": {"value": [30, 60]}</c> (a plain
    /// array there would be a List knob of single numbers, and the error says so). It takes no other key; wrap a map that has a key
    /// named <c>range</c> or <c>value</c> in it: <c>{"value": {"range": 5}}</c>.</item>
    /// <item>Other objects are maps (their values may be knobs); numbers, strings, booleans and null are literal.
    /// A number written with a fraction or an exponent is a real (<c>1.0</c>), otherwise a whole number
    /// (<c>1</c>).</item>
    /// </list>
    /// <para><b>Leaves.</b> Each config of the group becomes a flat <see cref="Config"/>: the user knobs in order,
    /// then <c>epochs</c>, <c>batch_size</c>, <c>optimizer</c> <c>{name, args}</c>, <c>lr_scheduler</c> (only when
    /// given) and <c>named_metrics</c> (only when given).</para>
    /// <para><b>Errors.</b> Malformed JSON is reported with the source name, line and position. Every other fault is
    /// reported at its knob path: <c>train.batch_size</c>, <c>train.optimizer.args.lr</c>, <c>user_knobs.hidden</c>,
    /// <c>named_metrics[1]</c>, the i-th option of a List at <c>path[i]</c>, the i-th config of a list at
    /// <c>[i].train.epochs</c> (top-level array) or <c>configs[i].train.epochs</c>, the pruning rule's at
    /// <c>pruning.eta</c>.</para>
    /// </remarks>
    public static ConfigGroup FromJson(string json, string sourceName) => ConfigJson.Read(json, sourceName);

    /// <summary>Reads and validates a config group file in the JSON format of <see cref="FromJson"/>.</summary>
    /// <param name="path">The file; a missing file is a <see cref="ConfigException"/> that names it.</param>
    public static ConfigGroup Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException("", $"{path}: no such config file");
        }
        return FromJson(text, path);
    }

    /// <summary>A single config with knobs is a grid search over them (no knob: exactly one config).</summary>
    public static implicit operator ConfigGroup(ConfigTemplate template) => new GridSearch(template);

    /// <summary>The faults of the group given to the fit: its own and its pruning rule's.</summary>
    internal void CollectGroup(ErrorSink errors)
    {
        Collect(errors);
        Pruning?.Collect(errors.Under(PruningRule.JsonKey));
    }

    /// <summary>The faults of the group's configs (the pruning rule is checked by <see cref="CollectGroup"/>).</summary>
    internal abstract void Collect(ErrorSink errors);

    internal abstract IEnumerable<Config> ExpandValid();

    internal abstract void Write(Utf8JsonWriter writer);
}

/// <summary>
/// Every combination of the <see cref="ListKnob"/>s of a template (the cartesian product), the first knob in
/// document order (user knobs, then train, then named metrics) varying slowest. A <see cref="RangeKnob"/> is an error.
/// A template with no knob gives exactly one config.
/// </summary>
public sealed class GridSearch(ConfigTemplate template) : ConfigGroup
{
    /// <summary>The template whose List knobs are expanded.</summary>
    public ConfigTemplate Template { get; } = template ?? throw new ArgumentNullException(nameof(template));

    internal override void Collect(ErrorSink errors) =>
        TemplateValidator.Validate(TemplateTree.Build(Template, errors), grid: true, errors);

    internal override IEnumerable<Config> ExpandValid() =>
        Expansion.Grid(TemplateTree.Build(Template, new ErrorSink())).Select(Expansion.ToConfig);

    internal override void Write(Utf8JsonWriter writer) => ConfigJson.WriteTemplate(writer, "grid", Template, null, Pruning);
}

/// <summary>
/// <see cref="Samples"/> configs drawn from a template, reproducibly from <see cref="Seed"/>: each List picks an
/// option uniformly; each Range draws uniformly, or log-uniformly when <c>log</c> is set (an int Range gives whole
/// numbers within [start, end], both included); with a <c>step</c>, values snap to <c>start + k*step</c> within the
/// bounds. Draws may repeat (a template of Lists only has few combinations).
/// </summary>
public sealed class RandomSearch : ConfigGroup
{
    /// <summary>The seed used when none is given (also in JSON, where <c>"seed"</c> is optional).</summary>
    public const int DefaultSeed = 0;

    /// <summary>Creates the group; faults such as <paramref name="samples"/> &lt; 1 are reported by <see cref="ConfigGroup.Validate"/>.</summary>
    public RandomSearch(ConfigTemplate template, int samples, int seed = DefaultSeed)
    {
        Template = template ?? throw new ArgumentNullException(nameof(template));
        Samples = samples;
        Seed = seed;
    }

    /// <summary>The template whose knobs are sampled.</summary>
    public ConfigTemplate Template { get; }

    /// <summary>How many configs to draw (at least 1).</summary>
    public int Samples { get; }

    /// <summary>The seed of the draws: the same seed gives the same configs.</summary>
    public int Seed { get; }

    internal override void Collect(ErrorSink errors)
    {
        if (Samples < 1) errors.Add("samples", $"must be >= 1 (the number of configs to draw), got {Samples}");
        TemplateValidator.Validate(TemplateTree.Build(Template, errors), grid: false, errors);
    }

    internal override IEnumerable<Config> ExpandValid()
    {
        var root = TemplateTree.Build(Template, new ErrorSink());
        var random = new Random(Seed);
        for (var i = 0; i < Samples; i++) yield return Expansion.ToConfig(Expansion.Sample(root, random));
    }

    internal override void Write(Utf8JsonWriter writer) => ConfigJson.WriteTemplate(writer, "random", Template, this, Pruning);
}

/// <summary>
/// Hand-picked configs and groups, expanded in order and concatenated. A <see cref="ConfigTemplate"/> converts to a
/// <see cref="GridSearch"/>, so an item with no knob is exactly one config. Errors of item <c>i</c> are reported
/// under <c>[i]</c> (or <c>configs[i]</c> for the JSON form <c>{"search": "list", "configs": [...]}</c>).
/// </summary>
public sealed class ConfigList : ConfigGroup
{
    /// <summary>Creates the list from its items, in order.</summary>
    public ConfigList(params ConfigGroup[] items) : this((IEnumerable<ConfigGroup>)items) { }

    /// <summary>Creates the list from its items, in order.</summary>
    public ConfigList(IEnumerable<ConfigGroup> items) : this(items, "") { }

    internal ConfigList(IEnumerable<ConfigGroup> items, string itemPath)
    {
        Items = items.ToList().AsReadOnly();
        ItemPath = itemPath;
    }

    /// <summary>The items, in order.</summary>
    public IReadOnlyList<ConfigGroup> Items { get; }

    /// <summary>The path the items' errors sit under: "" (<c>[i]</c>) or "configs" (<c>configs[i]</c>).</summary>
    internal string ItemPath { get; }

    internal override void Collect(ErrorSink errors)
    {
        if (Items.Count == 0) errors.Add(ItemPath, "a config list needs at least one config");
        for (var i = 0; i < Items.Count; i++)
        {
            var under = errors.Under(KnobPath.Index(ItemPath, i));
            if (Items[i] is null) under.Add("", "is null");
            else
            {
                Items[i].Collect(under);
                if (Items[i].Pruning is not null) under.Add(PruningRule.JsonKey, ConfigJson.NestedPruning);
            }
        }
    }

    internal override IEnumerable<Config> ExpandValid() => Items.SelectMany(item => item.ExpandValid());

    internal override void Write(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("search", "list");
        writer.WriteStartArray("configs");
        foreach (var item in Items) item.Write(writer);
        writer.WriteEndArray();
        ConfigJson.WritePruning(writer, Pruning);
        writer.WriteEndObject();
    }
}
