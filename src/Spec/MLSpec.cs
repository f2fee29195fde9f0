using Microsoft.Data.Analysis;
using RapidFire.Spec.Data;
using RapidFire.Spec.Metrics;
using RapidFire.Spec.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec;

/// <summary>
/// The user's training and inference code for one experiment: preprocessing, model, forward pass, metrics and
/// convergence. RapidFire calls these methods for every run (one leaf config of the config group) and every
/// partition; <c>cfg</c> is that run's <see cref="Config"/> and <c>mode</c> the partition.
/// </summary>
/// <remarks>
/// <para>Required: <see cref="RowPrep"/>, <see cref="CreateModel"/> and <see cref="ComputeForward"/>. Optional
/// (virtual, with defaults): <see cref="InitializeRun"/>, <see cref="CollateFn"/>, <see cref="ComputeMetrics"/>,
/// <see cref="AggregateMetrics"/> and <see cref="HasConverged"/>. <see cref="LoadModel"/> is a provided utility
/// for use inside <see cref="CreateModel"/>.</para>
/// <para>Objects created in <see cref="InitializeRun"/> must stay read-only afterwards: minibatches of a run may
/// be processed on several threads and devices.</para>
/// <para>A spec can be a compiled class, or one <c>.cs</c> file compiled at run time (see
/// <c>RapidFire.Spec.Compilation.SpecCompiler</c>); it needs a public parameterless constructor.</para>
/// </remarks>
public abstract class MLSpec
{
    static MLSpec() => TorchNative.EnsureLoaded();

    /// <summary>What the runtime tells the spec about where it runs (the models locator).</summary>
    public SpecContext Context { get; set; } = SpecContext.Empty;

    /// <summary>
    /// Builds read-only data structures for one run (tokenizers, label maps...), once per run and mode.
    /// </summary>
    /// <param name="miscPath">The folder of the data handle's <c>misc</c> locator (empty when it has none).</param>
    /// <param name="cfg">The run's knobs.</param>
    /// <param name="mode">The partition about to be processed.</param>
    public virtual void InitializeRun(string miscPath, Config cfg, Mode mode) { }

    /// <summary>
    /// Preprocesses one row of the Example Structure File into a dictionary (<c>Dictionary&lt;string, object&gt;</c>),
    /// a list or a tuple of values, or a single tensor. Without a custom <see cref="CollateFn"/> every member
    /// must be a tensor and none may be null. In predict mode the row has no label columns.
    /// </summary>
    public abstract object RowPrep(Row row, Config cfg, Mode mode);

    /// <summary>
    /// Whether the runtime may keep what <see cref="RowPrep"/> returns and reuse it in later epochs and in other runs
    /// whose knobs read by <c>RowPrep</c> and <c>InitializeRun</c> are equal (default: true). Return false when
    /// <c>RowPrep</c> is random (augmentation), so that every epoch sees new values. A <c>RowPrep</c> that gives a row
    /// different values twice in a row is detected and not cached either; a custom <see cref="CollateFn"/> of a cached
    /// spec gets the cached values and must not change them in place.
    /// </summary>
    public virtual bool CacheRowPrep => true;

    /// <summary>
    /// Collates the <see cref="RowPrep"/> values of one minibatch. The default (<see cref="Collate.Default"/>)
    /// stacks tensors inside dictionaries, lists and tuples; override it for variable-sized examples. Every
    /// top-level tensor returned must have the batch size as its outermost dimension.
    /// </summary>
    public virtual object CollateFn(IReadOnlyList<object> batch, Config cfg, Mode mode) => Collate.Default(batch);

    /// <summary>Creates the model for a run, typically choosing the architecture from user knobs.</summary>
    public abstract nn.Module CreateModel(Config cfg);

    /// <summary>
    /// The forward pass on one minibatch. Returns <c>(loss, outputs)</c> in train, validation and test (a train
    /// loss is required and must hold one value) and only the outputs in predict. The outputs are batch-size long
    /// in their outermost dimension; the named metrics read the reserved keys <c>predictions</c>,
    /// <c>logits</c> and <c>targets</c>.
    /// </summary>
    public abstract ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode);

    /// <summary>
    /// Minibatch-level custom metrics (train, validation and test). A tensor value holds one number and must be
    /// additive across minibatches; any other value is appended to a list per minibatch. The default returns none.
    /// </summary>
    public virtual IReadOnlyDictionary<string, object>? ComputeMetrics(Tensor? loss, IReadOnlyDictionary<string, object> outputs,
        Minibatch minibatch, Config cfg, Mode mode) => null;

    /// <summary>
    /// Aggregates the table of <see cref="ComputeMetrics"/> values (one column per key, one row per minibatch)
    /// into epoch-level metrics. The default sums every tensor metric.
    /// </summary>
    public virtual IReadOnlyDictionary<string, double> AggregateMetrics(DataFrame metrics, Config cfg, Mode mode) =>
        metrics.Columns.OfType<DoubleDataFrameColumn>().ToDictionary(c => c.Name, c => c.Sum(v => v ?? 0));

    /// <summary>
    /// Whether a run has converged, checked after every epoch's validation. <paramref name="valMetrics"/> has one
    /// row per completed epoch and one column per aggregated metric, per named metric and for the validation
    /// <c>loss</c>. <c>epochs</c> in the config stays the upper bound. The default never converges early.
    /// </summary>
    public virtual bool HasConverged(DataFrame valMetrics, int epoch, Config cfg) => false;

    /// <summary>
    /// Loads a model checkpoint from the data handle's <c>models</c> locator (a local folder or an S3 prefix), for use
    /// inside <see cref="CreateModel"/>: returns its state dictionary (CPU tensors), to give to
    /// <c>model.load_state_dict</c>. The extension picks the format: <c>.ckpt</c> (a RapidFire checkpoint's model
    /// weights), <c>.dat</c> (TorchSharp's <c>Module.save</c>), <c>.pt</c>/<c>.pth</c>/<c>.bin</c> (PyTorch's
    /// <c>torch.save</c> of a state dict) or <c>.safetensors</c>. Errors are <see cref="SpecException"/>s naming the
    /// tag and the locator (see <see cref="ModelFiles"/>).
    /// </summary>
    /// <param name="modelTag">The checkpoint's path relative to the models locator, such as <c>mnist/mlp.dat</c>.</param>
    public IReadOnlyDictionary<string, Tensor> LoadModel(string modelTag) => ModelFiles.Load(modelTag, Context);

    /// <summary>
    /// Loads a model checkpoint (as <see cref="LoadModel(string)"/>) into <paramref name="model"/>, strictly: the file
    /// must hold exactly the model's state dict entries, each with the model's shape; otherwise the error lists the
    /// missing and unexpected keys and the shape mismatches. Returns <paramref name="model"/>, so that
    /// <c>CreateModel</c> can end with <c>return LoadModel("base.dat", new Mlp(cfg));</c>.
    /// </summary>
    /// <param name="modelTag">The checkpoint's path relative to the models locator.</param>
    /// <param name="model">The freshly created model to load the weights into.</param>
    public T LoadModel<T>(string modelTag, T model) where T : nn.Module => ModelFiles.LoadInto(modelTag, model, Context);
}

/// <summary>Where a spec runs: what the runtime injects besides <c>cfg</c> and <c>mode</c>.</summary>
/// <param name="Models">The data handle's <c>models</c> locator, if it has one.</param>
/// <param name="Storage">The storage that reads the locator's files.</param>
public sealed record SpecContext(Locator? Models, IDataStorage Storage)
{
    /// <summary>A context whose models are in a local folder (or none), read from the local file system.</summary>
    /// <param name="modelsDirectory">The folder, or <see langword="null"/> for none.</param>
    public SpecContext(string? modelsDirectory)
        : this(modelsDirectory is null ? null : new LocalLocator(Path.GetFullPath(modelsDirectory)), DataStorage.Default)
    {
    }

    /// <summary>No locators known (a spec used outside an experiment).</summary>
    public static SpecContext Empty { get; } = new((string?)null);
}
