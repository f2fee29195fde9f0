using System.Buffers.Binary;
using System.Runtime.InteropServices;
using RapidFire.Actors.Training;
using TorchSharp.Modules;

namespace RapidFire.Actors.Checkpoints;

/// <summary>
/// A run's trainable state (<see cref="RunModel"/>) to a checkpoint payload and back: the model's weights and buffers
/// and the optimizer's state (param-group options such as the current learning rate, and per-parameter state such as
/// Adam's moments or SGD's momentum buffers). The learning-rate scheduler has no state dict in TorchSharp; it is
/// restored by replaying its steps (see <see cref="RestoreInto"/>).
/// </summary>
/// <remarks>
/// Payload layout, integers little-endian:
/// <code>
/// 4  the ASCII bytes "RFRS"
/// 4  int32 payload version, 1
/// 8  int64 M, then M bytes: the model's state dict in TorchSharp's format (nn.Module.save(BinaryWriter))
/// 8  int64 O, then O bytes: the optimizer state (OptimizerHelper.save_state_dict(BinaryWriter))
/// </code>
/// Restoring checks that each section is read exactly to its end. The optimizer must be one of TorchSharp's managed
/// optimizers (an <see cref="OptimizerHelper"/>, which all of <c>torch.optim</c>'s are). Tensor work here is
/// synchronous and stays on the calling thread; call it outside any dispose scope, since restored optimizer state
/// may be new tensors the optimizer keeps.
/// </remarks>
public static class RunStateCodec
{
    /// <summary>The first four bytes of every payload: "RFRS".</summary>
    public static ReadOnlySpan<byte> Magic => "RFRS"u8;

    /// <summary>The payload version this build writes and reads.</summary>
    public const int PayloadVersion = 1;

    /// <summary>The model and optimizer state of <paramref name="state"/> as a checkpoint payload.</summary>
    /// <exception cref="NotSupportedException">The optimizer is not one of TorchSharp's managed optimizers.</exception>
    public static byte[] Capture(RunModel state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var optimizer = Helper(state);
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(PayloadVersion);
            WriteSection(writer, w => state.Model.save(w));
            WriteSection(writer, optimizer.save_state_dict);
        }
        return stream.ToArray();
    }

    /// <summary>
    /// Loads a payload into <paramref name="fresh"/>: first the model's weights, then the optimizer's state.
    /// </summary>
    /// <remarks>
    /// Order matters. The scheduler must already stand where it stood at capture time: replay
    /// <see cref="CheckpointHeader.SchedulerSteps"/> <c>step()</c> calls on <paramref name="fresh"/>'s new scheduler
    /// <em>before</em> this call, because a step writes the optimizer's learning rate, and the optimizer state loaded
    /// here must have the last word on it. <see cref="RestoreInto"/> does the whole sequence.
    /// <paramref name="fresh"/> must be a run state of the same config (same model shape, same optimizer type and
    /// param groups), on the CPU, as <see cref="RunModel.Create"/> makes it; move it to a device afterwards.
    /// A restore that fails may have loaded part of the state: dispose <paramref name="fresh"/> then.
    /// </remarks>
    /// <exception cref="InvalidDataException">The payload is not a run state, or does not fit <paramref name="fresh"/>.</exception>
    public static void Restore(RunModel fresh, ReadOnlySpan<byte> payload) => RestoreSections(fresh, payload.ToArray(), "the payload");

    /// <summary>
    /// Restores a checkpoint into <paramref name="fresh"/>, a run state just created with the run's config and seed:
    /// replays the scheduler's <see cref="CheckpointHeader.SchedulerSteps"/> steps, then loads the model's weights
    /// and the optimizer's state, then puts back the optimizer's param-group options (learning rate, betas, weight
    /// decay...) as the config and the replayed scheduler set them.
    /// </summary>
    /// <remarks>
    /// A param group's options are a function of the run's knobs and of its scheduler's steps, both reproduced here,
    /// so for the run that wrote the checkpoint they come out as they were saved. For a warm clone (a checkpoint of its
    /// parent, restored under the clone's knobs) they are the clone's: a changed learning rate takes effect, while
    /// the weights and the optimizer's per-parameter state (Adam's moments, SGD's momentum) are the parent's.
    /// </remarks>
    /// <exception cref="InvalidDataException">The checkpoint does not fit <paramref name="fresh"/>; the message names its file.</exception>
    public static void RestoreInto(RunModel fresh, Checkpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(fresh);
        ArgumentNullException.ThrowIfNull(checkpoint);
        var steps = checkpoint.Header.SchedulerSteps;
        if (steps < 0)
            throw new InvalidDataException($"checkpoint '{checkpoint.Source}' says its scheduler stepped {steps} times");
        if (steps > 0 && fresh.Scheduler is null)
            throw new InvalidDataException(
                $"checkpoint '{checkpoint.Source}' replays {steps} learning-rate scheduler steps, but run {checkpoint.Ref.RunId}'s config has no lr_scheduler");
        for (var i = 0; i < steps; i++) fresh.Scheduler!.step();

        var options = Helper(fresh).state_dict().Options.Select(SaveOptions).ToList();
        var payload = MemoryMarshal.TryGetArray(checkpoint.Payload, out var segment)
            ? segment
            : new ArraySegment<byte>(checkpoint.Payload.ToArray());
        RestoreSections(fresh, payload, $"checkpoint '{checkpoint.Source}' ({checkpoint.Ref})");
        var restored = Helper(fresh).state_dict().Options;
        for (var i = 0; i < options.Count; i++)
        {
            using var reader = new BinaryReader(new MemoryStream(options[i], writable: false));
            restored[i].LoadStateDict(reader);
        }
    }

    private static byte[] SaveOptions(OptimizerOptions options)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) options.SaveStateDict(writer);
        return stream.ToArray();
    }

    private static void RestoreSections(RunModel fresh, ArraySegment<byte> payload, string what)
    {
        ArgumentNullException.ThrowIfNull(fresh);
        if (fresh.Device != "cpu")
            throw new InvalidOperationException($"restore {what} into a run state on the CPU, not on {fresh.Device}; move it afterwards");
        var optimizer = Helper(fresh);

        var span = payload.AsSpan();
        if (span.Length < 8 || !span[..4].SequenceEqual(Magic))
            throw new InvalidDataException($"{what} is not a run state (no \"RFRS\" magic)");
        var version = BinaryPrimitives.ReadInt32LittleEndian(span[4..]);
        if (version != PayloadVersion)
            throw new InvalidDataException($"{what} has run state version {version}; this build reads version {PayloadVersion}");
        var rest = payload[8..];
        rest = ReadSection(rest, what, "model state", r => fresh.Model.load(r));
        rest = ReadSection(rest, what, "optimizer state", optimizer.load_state_dict);
        if (rest.Count != 0)
            throw new InvalidDataException($"{what} has {rest.Count} unexpected bytes after the optimizer state");
    }

    private static OptimizerHelper Helper(RunModel state) => state.Optimizer as OptimizerHelper
        ?? throw new NotSupportedException(
            $"the optimizer {state.Optimizer.GetType().Name} has no state dict this runtime can save; use one of torch.optim's");

    private static void WriteSection(BinaryWriter writer, Action<BinaryWriter> write)
    {
        writer.Flush();
        var stream = writer.BaseStream;
        var lengthAt = stream.Position;
        writer.Write(0L); // patched below, once the section's length is known
        write(writer);
        writer.Flush();
        var end = stream.Position;
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(length, end - lengthAt - 8);
        stream.Position = lengthAt;
        stream.Write(length);
        stream.Position = end;
    }

    /// <summary>Reads one length-prefixed section with <paramref name="read"/>, which sees only its bytes; returns what follows.</summary>
    private static ArraySegment<byte> ReadSection(ArraySegment<byte> bytes, string what, string section, Action<BinaryReader> read)
    {
        if (bytes.Count < 8)
            throw new InvalidDataException($"{what} is truncated: its {section} is missing");
        var length = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan());
        var remaining = bytes.Count - 8;
        if (length < 0 || length > remaining)
            throw new InvalidDataException($"{what} is truncated: its {section} claims {length} bytes, {remaining} remain");

        using var stream = new MemoryStream(bytes.Array!, bytes.Offset + 8, (int)length, writable: false);
        using var reader = new BinaryReader(stream);
        try
        {
            read(reader);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or InvalidOperationException or FormatException
                                      or IOException or ExternalException)
        {
            throw new InvalidDataException($"{what} does not fit the run's model and optimizer: its {section} could not be loaded ({e.Message})", e);
        }
        if (stream.Position != length)
            throw new InvalidDataException(
                $"{what} does not fit the run's model and optimizer: its {section} holds {length} bytes, {stream.Position} were read");
        return bytes[(8 + (int)length)..];
    }
}
