using RapidFire.Spec;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Data;

/// <summary>
/// Moves a collated minibatch to a CUDA device on the loader's thread: each tensor is copied into pinned (page-locked)
/// host memory, then to the device without blocking, so the transfer overlaps the device's work. CUDA only: on the
/// CPU the minibatch stays where <c>CollateFn</c> made it.
/// </summary>
public static class DeviceCopy
{
    /// <summary>
    /// The minibatch on <paramref name="torchDevice"/> (<c>cuda:N</c>); the host tensors are disposed. A failure (the
    /// device is out of memory) is a <see cref="Training.RunFailureException"/> of <c>device</c> naming the device.
    /// </summary>
    public static Minibatch ToDevice(Minibatch minibatch, string torchDevice)
    {
        var target = torch.device(torchDevice);
        try
        {
            return new Minibatch(TensorTree.Map(minibatch.Value, tensor =>
            {
                if (tensor.device_type == target.type && tensor.device_index == target.index) return tensor.alias();
                using var pinned = tensor.is_pinned() ? tensor.alias() : tensor.pin_memory();
                return pinned.to(target, non_blocking: true);
            }), minibatch.Size);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new Training.RunFailureException(new Runs.RunFailure("device", $"the minibatch could not be moved to {torchDevice}: {e.Message}"), e);
        }
        finally
        {
            TensorTree.Dispose(minibatch.Value);
        }
    }
}
