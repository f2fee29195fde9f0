using RapidFire.Actors;

namespace RapidFire.Host;

/// <summary>Per-fit overrides of the runtime settings (null: the experiment's defaults).</summary>
/// <param name="Chunks">Chunks per epoch.</param>
/// <param name="Devices"><c>cpu</c>, <c>cpu:N</c>, <c>cuda</c> or <c>cuda:I,J</c>.</param>
/// <param name="Seed">The seed of runs without a <c>seed</c> knob.</param>
/// <param name="Prefetch">Minibatches prepared ahead of each device.</param>
/// <param name="Loaders">DataLoaderActors (0: one per core).</param>
/// <param name="TorchThreads">libtorch intra-op threads (0: the cores shared among the CPU devices).</param>
public sealed record FitOptions(int? Chunks = null, string? Devices = null, long? Seed = null, int? Prefetch = null, int? Loaders = null,
    int? TorchThreads = null)
{
    internal RuntimeSettings Over(RuntimeSettings defaults) => (defaults with
    {
        Chunks = Chunks ?? defaults.Chunks,
        Devices = Devices ?? defaults.Devices,
        Seed = Seed ?? defaults.Seed,
        Prefetch = Prefetch ?? defaults.Prefetch,
        Loaders = Loaders ?? defaults.Loaders,
        TorchThreads = TorchThreads ?? defaults.TorchThreads,
    }).Validated();
}
