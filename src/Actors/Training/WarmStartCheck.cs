using RapidFire.Spec;
using TorchSharp;

namespace RapidFire.Actors.Training;

/// <summary>
/// Whether a warm clone can take its parent's weights: the model its knobs create must have the parent's
/// architecture (the same parameters and buffers, with the same shapes and types).
/// </summary>
public static class WarmStartCheck
{
    /// <summary>
    /// Creates both models (<c>CreateModel</c> of each spec instance with its knobs) and compares their state dicts;
    /// returns why the clone's model cannot take the parent's weights, or null when it can.
    /// </summary>
    /// <remarks>
    /// The models are created holding <see cref="TorchRandom.Lock"/>, and the process-wide CPU generator is put back
    /// as it was afterwards, so the check draws no numbers a run's training would otherwise have drawn.
    /// </remarks>
    public static string? Architecture(int parentId, MLSpec parentSpec, Config parentCfg, MLSpec cloneSpec, Config cloneCfg, IEnumerable<string> changed)
    {
        var knobs = $"changing {string.Join(", ", changed)}";
        lock (TorchRandom.Lock)
        {
            using var generator = torch.random.get_rng_state();
            try
            {
                using var parent = SpecCall.Run("CreateModel", () => parentSpec.CreateModel(parentCfg));
                torch.nn.Module clone;
                try
                {
                    clone = cloneSpec.CreateModel(cloneCfg) ?? throw new SpecException("CreateModel", "returned null");
                }
                catch (Exception e)
                {
                    return $"CreateModel fails with the clone's knobs ({e.Message}), so it cannot take run {parentId}'s weights";
                }
                using (clone)
                {
                    var expected = parent.state_dict();
                    var actual = clone.state_dict();
                    foreach (var (name, tensor) in expected)
                    {
                        if (!actual.TryGetValue(name, out var other))
                            return $"{knobs} changes the model's architecture: the clone's model has no '{name}'; {Advice(parentId)}";
                        if (!tensor.shape.SequenceEqual(other.shape) || tensor.dtype != other.dtype)
                            return $"{knobs} changes the model's architecture: '{name}' is {Shape(tensor)} in run {parentId} and {Shape(other)} " +
                                   $"with the clone's knobs; {Advice(parentId)}";
                    }
                    var extra = actual.Keys.Except(expected.Keys).FirstOrDefault();
                    return extra is null ? null
                        : $"{knobs} changes the model's architecture: the clone's model has '{extra}', run {parentId}'s has not; {Advice(parentId)}";
                }
            }
            finally
            {
                torch.random.set_rng_state(generator);
            }
        }
    }

    private static string Advice(int parentId) => $"a warm start copies run {parentId}'s trained weights, which need the same architecture: clone without a warm start";

    private static string Shape(torch.Tensor tensor) => $"[{string.Join(", ", tensor.shape)}] {tensor.dtype}";
}
