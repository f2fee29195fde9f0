using RapidFire.Spec.Data;
using RapidFire.Spec.ModelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec;

/// <summary>
/// Reads model checkpoints found under a data handle's <c>models</c> locator (local or S3), for
/// <see cref="MLSpec.LoadModel(string)"/>.
/// </summary>
/// <remarks>
/// <para>The file is read through the context's <see cref="IDataStorage"/>, so any storage that serves the locator
/// serves its models. Its extension picks the reader: <c>.ckpt</c> (a RapidFire checkpoint: the model's weights, the
/// optimizer state skipped), <c>.dat</c> (TorchSharp's <c>Module.save</c>), <c>.pt</c>, <c>.pth</c> and <c>.bin</c>
/// (PyTorch's <c>torch.save</c> of a state dict, or of a dictionary holding one under <c>state_dict</c>,
/// <c>model_state_dict</c> or <c>model</c>) and <c>.safetensors</c>. A file whose first bytes say it is of another
/// format is refused with an error that says which.</para>
/// <para>Every error is a <see cref="SpecException"/> of <c>LoadModel</c> naming the tag and the locator: a missing
/// tag, a tag that is absolute or escapes the locator, an unsupported extension (the error lists the supported
/// ones), and a file that cannot be read (the error names the file and what is wrong with it).</para>
/// </remarks>
public static class ModelFiles
{
    private const string Method = "LoadModel";

    /// <summary>
    /// Loads the state dictionary stored under <paramref name="modelTag"/> in the models locator of
    /// <paramref name="context"/>. The tensors are on the CPU, new, and the caller's.
    /// </summary>
    /// <exception cref="SpecException">The tag cannot be loaded; the message says why and names the tag and the locator.</exception>
    public static IReadOnlyDictionary<string, Tensor> Load(string modelTag, SpecContext context)
    {
        ArgumentNullException.ThrowIfNull(modelTag);
        ArgumentNullException.ThrowIfNull(context);
        if (context.Models is not { } models)
            throw new SpecException(Method, $"model tag '{modelTag}': the data handle has no 'models' locator");
        var file = models.Combine(Normalize(modelTag, models));
        var extension = Path.GetExtension(file.FileName);
        var format = ModelFileFormats.ForExtension(extension)
            ?? throw new SpecException(Method, $"model tag '{modelTag}': cannot read {(extension.Length == 0 ? "files without an extension" : $"'{extension}' files")}; " +
                                               $"the supported extensions are {ModelFileFormats.SupportedList}");

        bool exists;
        try
        {
            exists = context.Storage.FileExists(file);
        }
        catch (DataException e)
        {
            throw new SpecException(Method, $"model tag '{modelTag}': {e.Message}", e);
        }
        if (!exists)
            throw new SpecException(Method, $"model tag '{modelTag}' not found in the models locator {models}");

        using var scope = NewDisposeScope();
        var state = Read(modelTag, file, format, context.Storage);
        scope.MoveToOuter(state.Values);
        return state;
    }

    /// <summary>
    /// Loads <paramref name="modelTag"/> into <paramref name="model"/> strictly: every entry of the model's state dict
    /// must be in the file with the same shape, and the file must hold nothing else. Values are copied into the model's
    /// tensors (converted to their dtype and device); the loaded tensors are disposed.
    /// </summary>
    /// <returns><paramref name="model"/>.</returns>
    /// <exception cref="SpecException">The tag cannot be loaded, or does not fit the model: the message lists the
    /// missing and unexpected keys and the shape mismatches.</exception>
    public static T LoadInto<T>(string modelTag, T model, SpecContext context) where T : nn.Module
    {
        ArgumentNullException.ThrowIfNull(model);
        var state = Load(modelTag, context);
        try
        {
            CheckFits(modelTag, model, state);
            using (no_grad())
                model.load_state_dict(state as Dictionary<string, Tensor> ?? state.ToDictionary(), strict: true);
            return model;
        }
        finally
        {
            foreach (var tensor in state.Values) tensor.Dispose();
        }
    }

    /// <summary>
    /// Checks that <paramref name="state"/> fits <paramref name="model"/> exactly (same keys, same shapes).
    /// </summary>
    /// <exception cref="SpecException">It does not; the message lists every difference (ten of each kind at most).</exception>
    public static void CheckFits(string modelTag, nn.Module model, IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        var expected = model.state_dict();
        var missing = expected.Keys.Where(k => !state.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = state.Keys.Where(k => !expected.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var mismatched = expected
            .Where(e => state.TryGetValue(e.Key, out var t) && !t.shape.SequenceEqual(e.Value.shape))
            .OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => $"{e.Key} is {Shape(state[e.Key])} in the file, {Shape(e.Value)} in the model")
            .ToList();
        if (missing.Count + unexpected.Count + mismatched.Count == 0) return;

        var problems = new List<string>();
        if (missing.Count > 0) problems.Add($"missing keys: {List(missing)}");
        if (unexpected.Count > 0) problems.Add($"unexpected keys: {List(unexpected)}");
        if (mismatched.Count > 0) problems.Add($"shape mismatches: {List(mismatched)}");
        throw new SpecException(Method, $"model tag '{modelTag}' does not fit the model {model.GetType().Name}: {string.Join("; ", problems)}");

        static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
        static string List(List<string> items) =>
            string.Join(", ", items.Take(10)) + (items.Count > 10 ? $" and {items.Count - 10} more" : "");
    }

    /// <summary>The tag as <c>/</c>-separated segments below the locator, or the error saying why it is not one.</summary>
    private static string Normalize(string modelTag, Locator models)
    {
        if (string.IsNullOrWhiteSpace(modelTag))
            throw new SpecException(Method, "the model tag is empty; give a file's path relative to the models locator");
        if (modelTag[0] is '/' or '\\' || modelTag.Contains("://", StringComparison.Ordinal)
            || (modelTag.Length >= 2 && char.IsAsciiLetter(modelTag[0]) && modelTag[1] == ':'))
            throw new SpecException(Method,
                $"model tag '{modelTag}' is an absolute path or URL; give a path relative to the models locator {models}");
        var segments = new List<string>();
        foreach (var segment in modelTag.Split('/', '\\'))
        {
            if (segment is "" or ".") continue;
            if (segment != "..")
                segments.Add(segment);
            else if (segments.Count > 0)
                segments.RemoveAt(segments.Count - 1);
            else
                throw new SpecException(Method, $"model tag '{modelTag}' escapes the models locator {models}");
        }
        if (segments.Count == 0)
            throw new SpecException(Method, $"model tag '{modelTag}' names the models locator {models} itself, not a file in it");
        return string.Join('/', segments);
    }

    private static Dictionary<string, Tensor> Read(string modelTag, Locator file, ModelFileFormat format, IDataStorage storage)
    {
        try
        {
            using var stream = Seekable(storage.OpenRead(file));
            var head = new byte[ModelFileFormats.SniffLength];
            var headLength = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            stream.Position = 0;
            if (ModelFileFormats.Mismatch(format, head.AsSpan(0, headLength)) is { } mismatch)
                throw new InvalidDataException(mismatch);
            return format switch
            {
                ModelFileFormat.TorchSharp => TorchSharpStateDict.Read(stream, stream.Length),
                ModelFileFormat.RapidFireCheckpoint => RapidFireCheckpoint.ReadModel(stream),
                ModelFileFormat.PyTorch => PyTorchStateDict.ReadPickle(stream),
                ModelFileFormat.Safetensors => PyTorchStateDict.ReadSafetensors(stream),
                _ => throw new InvalidOperationException($"no reader for {format}"),
            };
        }
        catch (DataException e)
        {
            throw new SpecException(Method, $"model tag '{modelTag}': {e.Message}", e);
        }
        catch (Exception e) when (e is not (SpecException or OutOfMemoryException or OperationCanceledException))
        {
            var reason = e switch
            {
                InvalidDataException => e.Message,
                EndOfStreamException => "truncated: the file ends before its content does",
                _ => $"{e.GetType().Name}: {e.Message}",
            };
            throw new SpecException(Method, $"model tag '{modelTag}' ({file}) cannot be read as {Describe(format)}: {reason}", e);
        }
    }

    private static string Describe(ModelFileFormat format) => ModelFileFormats.Supported.First(s => s.Format == format) switch
    {
        (_, ModelFileFormat.PyTorch, _) => "a PyTorch state dict (torch.save)",
        var (ext, _, description) => $"{description} ({ext})",
    };

    /// <summary>
    /// The readers seek (zip archives have their directory at the end); a stream that cannot (an S3 download) is first
    /// copied to a temporary file, deleted when the stream is closed.
    /// </summary>
    private static Stream Seekable(Stream stream)
    {
        if (stream.CanSeek) return stream;
        using (stream)
        {
            var copy = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16,
                FileOptions.DeleteOnClose);
            try
            {
                stream.CopyTo(copy);
                copy.Position = 0;
                return copy;
            }
            catch
            {
                copy.Dispose();
                throw;
            }
        }
    }
}
