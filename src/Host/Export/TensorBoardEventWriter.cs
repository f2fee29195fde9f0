using System.Buffers.Binary;
using System.Globalization;
using Google.Protobuf;
using RapidFire.Spec;
using Tensorboard;
using WellKnown = Google.Protobuf.WellKnownTypes;

namespace RapidFire.Host.Export;

/// <summary>How a run ended, as TensorBoard's HPARAMS tab shows it (its <c>Status</c> enum).</summary>
public enum TensorBoardSessionStatus
{
    /// <summary>STATUS_UNKNOWN: stopped or deleted by the user.</summary>
    Unknown = 0,
    /// <summary>STATUS_SUCCESS: completed.</summary>
    Success = 1,
    /// <summary>STATUS_FAILURE: failed.</summary>
    Failure = 2,
    /// <summary>STATUS_RUNNING.</summary>
    Running = 3,
}

/// <summary>
/// One TensorBoard event file (<c>events.out.tfevents.*</c>) of one run: scalars and the run's hparams session.
/// </summary>
/// <remarks>
/// <para>The file is a sequence of TFRecords, each: the data's length (uint64 little-endian), the masked CRC-32C of
/// those 8 bytes, the data (a serialized <c>tensorboard.Event</c>), the masked CRC-32C of the data; a masked CRC is
/// <c>((crc &gt;&gt; 15 | crc &lt;&lt; 17) + 0xa282ead8)</c>. The first event names the file version
/// (<c>brain.Event:2</c>).</para>
/// <para>The events are TorchSharp's <c>Tensorboard.Event</c> and <c>Summary</c> messages and the CRC is TorchSharp's
/// CRC-32C; TorchSharp's own <c>SummaryWriter</c> is not used: it writes wall times as <c>DateTime.Ticks</c> in a float
/// (0 unless given), steps as int, opens the file for every event, and has no hparams. The hparams are the
/// <c>hparams</c> plugin's <c>session_start_info</c> and <c>session_end_info</c> (tensorboard/plugins/hparams
/// plugin_data.proto), as PyTorch's <c>add_hparams</c> writes them; TensorBoard takes the metrics of its HPARAMS tab from
/// the run's scalars.</para>
/// </remarks>
public sealed class TensorBoardEventWriter : IDisposable
{
    /// <summary>The hparams plugin's tags and name (tensorboard/plugins/hparams/metadata.py).</summary>
    public const string SessionStartTag = "_hparams_/session_start_info", SessionEndTag = "_hparams_/session_end_info", HParamsPlugin = "hparams";

    private static int files;
    private readonly FileStream stream;

    /// <summary>Creates a new event file in <paramref name="directory"/> (created when missing) and writes its version event.</summary>
    /// <param name="directory">The run's folder: TensorBoard shows one run per folder.</param>
    /// <param name="wallTime">Now, in seconds since the Unix epoch.</param>
    public TensorBoardEventWriter(string directory, double wallTime)
    {
        Directory.CreateDirectory(directory);
        // TensorBoard reads a folder's event files in name order: a later file (a resumed fit) sorts after.
        var name = string.Create(CultureInfo.InvariantCulture,
            $"events.out.tfevents.{(long)wallTime:D10}.{Environment.MachineName}.{Environment.ProcessId}.{Interlocked.Increment(ref files)}");
        Path = System.IO.Path.Combine(directory, name);
        stream = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        Write(new Event { WallTime = wallTime, FileVersion = "brain.Event:2" });
    }

    /// <summary>The event file.</summary>
    public string Path { get; }

    /// <summary>A scalar: <paramref name="tag"/> = <paramref name="value"/> at <paramref name="step"/>.</summary>
    public void WriteScalar(string tag, double value, long step, double wallTime)
    {
        var summary = new Summary();
        summary.Value.Add(new Summary.Types.Value { Tag = tag, SimpleValue = (float)value });
        Write(new Event { WallTime = wallTime, Step = step, Summary = summary });
    }

    /// <summary>The run's hparams (its knobs): numbers, booleans and strings as such, anything else as its JSON text.</summary>
    public void WriteSessionStart(IEnumerable<KeyValuePair<string, object?>> hparams, string groupName, double wallTime)
    {
        var info = new MemoryStream();
        var output = new CodedOutputStream(info);
        foreach (var (name, value) in hparams)
        {
            var entry = new MemoryStream(); // map<string, google.protobuf.Value> hparams = 1: entries {key = 1, value = 2}
            var entryOutput = new CodedOutputStream(entry);
            entryOutput.WriteTag(1, WireFormat.WireType.LengthDelimited);
            entryOutput.WriteString(name);
            entryOutput.WriteTag(2, WireFormat.WireType.LengthDelimited);
            entryOutput.WriteMessage(HParamValue(value));
            entryOutput.Flush();
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(entry.ToArray()));
        }
        output.WriteTag(4, WireFormat.WireType.LengthDelimited); // group_name
        output.WriteString(groupName);
        output.WriteTag(5, WireFormat.WireType.Fixed64); // start_time_secs
        output.WriteDouble(wallTime);
        output.Flush();
        WritePluginData(SessionStartTag, 3, info.ToArray(), wallTime); // HParamsPluginData.session_start_info = 3
    }

    /// <summary>How the run ended.</summary>
    public void WriteSessionEnd(TensorBoardSessionStatus status, double wallTime)
    {
        var info = new MemoryStream();
        var output = new CodedOutputStream(info);
        output.WriteTag(1, WireFormat.WireType.Varint); // status
        output.WriteEnum((int)status);
        output.WriteTag(2, WireFormat.WireType.Fixed64); // end_time_secs
        output.WriteDouble(wallTime);
        output.Flush();
        WritePluginData(SessionEndTag, 4, info.ToArray(), wallTime); // HParamsPluginData.session_end_info = 4
    }

    /// <summary>Writes what is buffered to the disk.</summary>
    public void Flush() => stream.Flush(flushToDisk: false);

    /// <inheritdoc />
    public void Dispose() => stream.Dispose();

    /// <summary>A value with plugin data only (no value of its own), as PyTorch writes hparams: HParamsPluginData {version 0, field = info}.</summary>
    private void WritePluginData(string tag, int field, byte[] info, double wallTime)
    {
        var content = new MemoryStream();
        var output = new CodedOutputStream(content);
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(info));
        output.Flush();
        var metadata = new SummaryMetadata
        {
            PluginData = new SummaryMetadata.Types.PluginData { PluginName = HParamsPlugin, Content = ByteString.CopyFrom(content.ToArray()) },
        };
        var summary = new Summary();
        summary.Value.Add(new Summary.Types.Value { Tag = tag, Metadata = metadata });
        Write(new Event { WallTime = wallTime, Summary = summary });
    }

    private static WellKnown.Value HParamValue(object? value) => value switch
    {
        null => WellKnown.Value.ForNull(),
        bool b => WellKnown.Value.ForBool(b),
        string s => WellKnown.Value.ForString(s),
        long or int or double or float => WellKnown.Value.ForNumber(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
        _ => WellKnown.Value.ForString(ConfigValue.ToJson(value)),
    };

    /// <summary>Appends one TFRecord: length, masked CRC of the length, the event, masked CRC of the event.</summary>
    private void Write(Event e)
    {
        var data = e.ToByteArray();
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc(header[..8].ToArray()));
        stream.Write(header);
        stream.Write(data);
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc(data));
        stream.Write(footer);
    }

    /// <summary>The TFRecord's masked CRC-32C of <paramref name="data"/>.</summary>
    public static uint MaskedCrc(byte[] data)
    {
        var crc = TorchSharp.Utils.CRC32C.process(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }
}
