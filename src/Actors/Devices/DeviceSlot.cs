using RapidFire.Spec;

namespace RapidFire.Actors.Devices;

/// <summary>One place a GpuActor trains on: a CUDA device, or one of N parallel CPU workers.</summary>
/// <param name="Id">The slot's name in logs and status: <c>cpu</c>, <c>cpu-1</c>, <c>cuda:0</c>.</param>
/// <param name="TorchDevice">The TorchSharp device string: <c>cpu</c> or <c>cuda:N</c>.</param>
public sealed record DeviceSlot(string Id, string TorchDevice)
{
    /// <summary>Whether the slot is a CUDA device.</summary>
    public bool IsCuda => TorchDevice.StartsWith("cuda", StringComparison.Ordinal);
}

/// <summary>Parses the <c>--devices</c> setting.</summary>
public static class DeviceSpec
{
    /// <summary>What <c>--devices</c> accepts, for messages.</summary>
    public const string Forms = "cpu, cpu:N (N parallel CPU workers), cuda (every CUDA device), cuda:I,J,... (those devices) or none (a cluster's coordinator that trains on its workers only)";

    /// <summary>
    /// <c>cpu</c> is one CPU worker; <c>cpu:N</c> is N parallel CPU workers (they share the cores); <c>cuda</c> is
    /// every CUDA device; <c>cuda:0,2</c> is those devices. <paramref name="cudaDeviceCount"/> tells how many CUDA
    /// devices there are (TorchSharp's <c>torch.cuda.device_count()</c>). A bad value is a
    /// <see cref="ConfigException"/> at <c>devices</c>.
    /// </summary>
    public static IReadOnlyList<DeviceSlot> Parse(string text, Func<int> cudaDeviceCount)
    {
        var value = text.Trim().ToLowerInvariant();
        var (kind, arg) = value.IndexOf(':') is var colon and >= 0 ? (value[..colon], value[(colon + 1)..]) : (value, null);
        switch (kind)
        {
            case "cpu" when arg is null:
                return [new DeviceSlot("cpu", "cpu")];
            case "none" when arg is null:
                return []; // the experiment's node of a cluster that trains on its workers only
            case "cpu":
                if (!int.TryParse(arg, out var workers) || workers < 1 || workers > 256)
                    throw Fault(text, "cpu:N needs a whole number of workers N >= 1");
                return workers == 1
                    ? [new DeviceSlot("cpu", "cpu")]
                    : Enumerable.Range(0, workers).Select(i => new DeviceSlot($"cpu-{i}", "cpu")).ToList();
            case "cuda":
                var available = cudaDeviceCount();
                if (available == 0) throw Fault(text, "no CUDA device is available (this build or machine is CPU-only); use cpu or cpu:N");
                if (arg is null)
                    return Enumerable.Range(0, available).Select(i => new DeviceSlot($"cuda:{i}", $"cuda:{i}")).ToList();
                var indices = new List<int>();
                foreach (var part in arg.Split(','))
                {
                    if (!int.TryParse(part, out var index) || index < 0)
                        throw Fault(text, $"'{part}' is not a device index");
                    if (index >= available)
                        throw Fault(text, $"cuda:{index} does not exist; this machine has {available} CUDA device{(available == 1 ? "" : "s")} (0..{available - 1})");
                    if (indices.Contains(index)) throw Fault(text, $"cuda:{index} is listed twice");
                    indices.Add(index);
                }
                return indices.Select(i => new DeviceSlot($"cuda:{i}", $"cuda:{i}")).ToList();
            default:
                throw Fault(text, $"expected {Forms}");
        }
    }

    private static ConfigException Fault(string text, string message) => new("devices", $"'{text}': {message}");
}
