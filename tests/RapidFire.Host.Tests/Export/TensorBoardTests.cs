using System.Buffers.Binary;
using Google.Protobuf;
using RapidFire.Actors.Runs;
using RapidFire.Host.Export;
using RapidFire.Spec.Configs;
using RapidFire.Spec.Data;
using RapidFire.Spec.Native;
using Tensorboard;
using WellKnown = Google.Protobuf.WellKnownTypes;

namespace RapidFire.Host.Tests.Export;

/// <summary>
/// Reads TensorBoard event files back as TensorBoard does: TFRecords (length, masked CRC-32C of the length, data,
/// masked CRC-32C of the data), each checked with a CRC-32C of the test's own, the data a <c>tensorboard.Event</c>.
/// </summary>
internal static class EventFiles
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(i =>
    {
        var crc = (uint)i;
        for (var bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1; // Castagnoli, reflected
        return crc;
    }).ToArray();

    /// <summary>CRC-32C (iSCSI, Castagnoli), bit by bit from its definition.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    public static uint Masked(ReadOnlySpan<byte> data)
    {
        var crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    /// <summary>Every event of the file, in order; throws naming the offset of a record whose framing or CRC is wrong.</summary>
    public static List<Event> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        for (var at = 0; at < bytes.Length;)
        {
            if (bytes.Length - at < 12) throw new InvalidDataException($"{path}: a truncated record header at byte {at}");
            var length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at, 8));
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8, 4)) != Masked(bytes.AsSpan(at, 8)))
                throw new InvalidDataException($"{path}: the length CRC of the record at byte {at} is wrong");
            if ((ulong)(bytes.Length - at - 16) < length) throw new InvalidDataException($"{path}: a truncated record at byte {at}");
            var data = bytes.AsSpan(at + 12, (int)length);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length, 4)) != Masked(data))
                throw new InvalidDataException($"{path}: the data CRC of the record at byte {at} is wrong");
            events.Add(Event.Parser.ParseFrom(data.ToArray())); // TorchSharp's generated messages parse from arrays, not spans
            at += 16 + (int)length;
        }
        return events;
    }

    /// <summary>The scalars of <paramref name="tag"/>, in file order: (step, value).</summary>
    public static List<(long Step, float Value)> Scalars(IEnumerable<Event> events, string tag) =>
        events.Where(e => e.Summary is not null).SelectMany(e => e.Summary.Value.Where(v => v.Tag == tag).Select(v => (e.Step, v.SimpleValue))).ToList();

    /// <summary>The hparams plugin's payload under <paramref name="tag"/>: the HParamsPluginData field it holds, as bytes.</summary>
    public static ByteString? PluginPayload(IEnumerable<Event> events, string tag, int field)
    {
        var value = events.Where(e => e.Summary is not null).SelectMany(e => e.Summary.Value).LastOrDefault(v => v.Tag == tag);
        if (value is null) return null;
        Assert.Equal("hparams", value.Metadata.PluginData.PluginName);
        return Fields(value.Metadata.PluginData.Content).Single(f => f.Field == field).Bytes;
    }

    /// <summary>SessionStartInfo.hparams: map&lt;string, google.protobuf.Value&gt; = 1.</summary>
    public static Dictionary<string, WellKnown.Value> HParams(ByteString sessionStart) =>
        Fields(sessionStart).Where(f => f.Field == 1).Select(f => Fields(f.Bytes!).ToList())
            .ToDictionary(entry => entry.Single(f => f.Field == 1).Bytes!.ToStringUtf8(), entry => WellKnown.Value.Parser.ParseFrom(entry.Single(f => f.Field == 2).Bytes));

    /// <summary>SessionEndInfo.status = 1.</summary>
    public static int EndStatus(ByteString sessionEnd) => (int)Fields(sessionEnd).Single(f => f.Field == 1).Number;

    /// <summary>The top-level fields of a message: varints as numbers, length-delimited ones as bytes, fixed64 as raw bits.</summary>
    private static IEnumerable<(int Field, ByteString? Bytes, ulong Number)> Fields(ByteString message)
    {
        var input = new CodedInputStream(message.ToByteArray());
        var fields = new List<(int, ByteString?, ulong)>();
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            var field = WireFormat.GetTagFieldNumber(tag);
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.Varint: fields.Add((field, null, input.ReadUInt64())); break;
                case WireFormat.WireType.LengthDelimited: fields.Add((field, input.ReadBytes(), 0)); break;
                case WireFormat.WireType.Fixed64: fields.Add((field, null, input.ReadFixed64())); break;
                default: throw new InvalidDataException($"unexpected wire type in field {field}");
            }
        }
        return fields;
    }
}

public sealed class TensorBoardEventWriterTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("rf-tb-").FullName;

    public TensorBoardEventWriterTests() => TorchNative.EnsureLoaded(); // the writer's CRC-32C is TorchSharp's native one

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void The_test_CRC32C_is_the_standard_one()
    {
        Assert.Equal(0xE3069283u, EventFiles.Crc32C("123456789"u8)); // the check value of CRC-32C (iSCSI)
        Assert.Equal(EventFiles.Masked("123456789"u8.ToArray()), TensorBoardEventWriter.MaskedCrc("123456789"u8.ToArray()));
    }

    [Fact]
    public void Scalars_and_an_hparams_session_read_back_with_their_values_steps_and_times()
    {
        string path;
        using (var writer = new TensorBoardEventWriter(dir, 1_800_000_000.25))
        {
            path = writer.Path;
            writer.WriteSessionStart([new("hidden", 16L), new("lr", 0.003), new("model_type", "mlp"), new("augment", true), new("sizes", new List<object?> { 1L, 2L })],
                "exp", 1_800_000_000.5);
            writer.WriteScalar("minibatch_loss", 2.25, 1, 1_800_000_001.0);
            writer.WriteScalar("minibatch_loss", 1.5, 5_000_000_000L, 1_800_000_002.0); // steps are 64-bit
            writer.WriteSessionEnd(TensorBoardSessionStatus.Success, 1_800_000_003.0);
        }

        Assert.StartsWith("events.out.tfevents.1800000000.", Path.GetFileName(path));
        var events = EventFiles.Read(path);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        Assert.Equal(1_800_000_000.25, events[0].WallTime);
        Assert.Equal([(1L, 2.25f), (5_000_000_000L, 1.5f)], EventFiles.Scalars(events, "minibatch_loss"));
        Assert.Equal([1_800_000_001.0, 1_800_000_002.0], events.Where(e => e.Step > 0).Select(e => e.WallTime));

        var hparams = EventFiles.HParams(EventFiles.PluginPayload(events, TensorBoardEventWriter.SessionStartTag, 3)!);
        Assert.Equal(16.0, hparams["hidden"].NumberValue);
        Assert.Equal(0.003, hparams["lr"].NumberValue);
        Assert.Equal("mlp", hparams["model_type"].StringValue);
        Assert.True(hparams["augment"].BoolValue);
        Assert.Equal("[1,2]", hparams["sizes"].StringValue);
        Assert.Equal(1, EventFiles.EndStatus(EventFiles.PluginPayload(events, TensorBoardEventWriter.SessionEndTag, 4)!)); // STATUS_SUCCESS
    }

    [Fact]
    public void A_flipped_byte_fails_the_records_CRC()
    {
        string path;
        using (var writer = new TensorBoardEventWriter(dir, 1_800_000_000))
        {
            path = writer.Path;
            writer.WriteScalar("loss", 1.0, 1, 1_800_000_001);
        }
        var bytes = File.ReadAllBytes(path);
        bytes[^6] ^= 0x01; // inside the last record's data
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InvalidDataException>(() => EventFiles.Read(path));
        Assert.Contains("data CRC", e.Message);
    }
}

/// <summary>A real fit written as TensorBoard event files, read back and compared with the runs' own metrics.</summary>
[Collection(ExperimentCollection.Name)]
public sealed class TensorBoardFitTests : IDisposable
{
    private readonly SmallMnist mnist = new();

    public TensorBoardFitTests() => File.WriteAllText(mnist.ConfigPath, """
        { "user_knobs": { "model_type": "mlp", "hidden": [16, 32], "hub_token": "hf_abc123" },
          "train": { "epochs": 2, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": 0.003 } } },
          "named_metrics": ["top1_accuracy"] }
        """);

    public void Dispose() => mnist.Dispose();

    [Fact]
    public async Task A_fit_writes_each_runs_scalars_by_step_its_knobs_as_hparams_and_its_end_and_a_resumed_export_adds_nothing_twice()
    {
        var logDir = Path.Combine(mnist.Directory, "tensorboard");
        using var experiment = new Experiment("tb-fit", Path.Combine(mnist.Directory, "experiments"));
        FitResult result;
        string runsDir;
        await using (var tensorboard = TensorBoardExporter.Attach(experiment, logDir))
        {
            result = await experiment.RunFitAsync(SpecSource.FromFile(RepoPaths.MnistExample("MnistSpec.cs")),
                ConfigGroup.Load(mnist.ConfigPath), DataHandle.Load(mnist.HandlePath), new FitOptions(Chunks: 2));
            await tensorboard.FlushAsync();
            runsDir = tensorboard.Directory;
        }

        Assert.Equal(Path.Combine(logDir, "tb-fit"), runsDir);
        foreach (var state in result.Runs)
        {
            Assert.Equal(RunStatus.Completed, state.Status);
            var file = Assert.Single(Directory.GetFiles(Path.Combine(runsDir, $"run-{state.RunId}"), "events.out.tfevents.*"));
            var events = EventFiles.Read(file);
            Assert.Equal("brain.Event:2", events[0].FileVersion);

            // the knobs as hparams, the secret one masked
            var hparams = EventFiles.HParams(EventFiles.PluginPayload(events, TensorBoardEventWriter.SessionStartTag, 3)!);
            Assert.Equal(state.Config.Leaves().Select(kv => kv.Key).Order(), hparams.Keys.Order());
            Assert.Equal("***", hparams["hub_token"].StringValue);
            Assert.Equal(Convert.ToDouble(state.Config.Leaves().Single(kv => kv.Key == "hidden").Value), hparams["hidden"].NumberValue);
            Assert.Equal("mlp", hparams["model_type"].StringValue);
            Assert.Equal(1, EventFiles.EndStatus(EventFiles.PluginPayload(events, TensorBoardEventWriter.SessionEndTag, 4)!));

            // train loss per minibatch: 2 epochs of 10 minibatches (300 rows / 32), steps 1..20 in order, each once
            var losses = EventFiles.Scalars(events, "minibatch_loss");
            Assert.Equal(Enumerable.Range(1, 20).Select(s => (long)s), losses.Select(m => m.Step));
            Assert.All(losses, m => Assert.True(m.Value > 0 && float.IsFinite(m.Value)));
            // the same values as the run's minibatch file, in its order
            var csv = File.ReadAllLines(Path.Combine(experiment.Path, "metrics", $"run-{state.RunId}.minibatches.csv"));
            var lossColumn = Array.IndexOf(csv[0].Split(','), "loss");
            var trained = csv.Skip(1).Select(l => l.Split(',')).Where(c => c[0] == "train")
                .Select(c => (float)double.Parse(c[lossColumn], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(trained, losses.Select(m => m.Value));

            // validation and train metrics per epoch, equal to the run's
            foreach (var metric in new[] { "loss", "top1_accuracy" })
            {
                Assert.Equal(state.ValidationHistory.Select((h, e) => ((long)e + 1, (float)h[metric])), EventFiles.Scalars(events, $"val_{metric}"));
                Assert.Equal(state.TrainHistory.Select((h, e) => ((long)e + 1, (float)h[metric])), EventFiles.Scalars(events, $"train_{metric}"));
            }
        }
        Assert.DoesNotContain("warning: tensorboard", File.ReadAllText(Path.Combine(experiment.Path, "experiment.log")));

        // A second exporter over the same state file (a resumed fit) shown the same states writes no new file.
        var state2 = Path.Combine(experiment.Path, TensorBoardExporter.StateFileName);
        Assert.True(File.Exists(state2));
        var lines = new List<string>();
        await using (var again = new TensorBoardExporter(logDir, "tb-fit", lines.Add, state2))
        {
            foreach (var state in result.Runs) again.Observe(new RunChanged(state));
            await again.FlushAsync();
        }
        Assert.Empty(lines);
        foreach (var state in result.Runs)
            Assert.Single(Directory.GetFiles(Path.Combine(runsDir, $"run-{state.RunId}"), "events.out.tfevents.*"));
    }
}
