using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using RapidFire.Spec;

namespace RapidFire.Actors.Persistence;

/// <summary>
/// Serializes journaled events and snapshots as UTF-8 JSON with the manifests of <see cref="EventSchema"/>: readable
/// with any SQL client, and independent of .NET type names. Bound to <see cref="IJournaled"/> in
/// <see cref="JournalConfig"/>.
/// </summary>
public sealed class JournalSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    /// <summary>The serializer's id in the actor system's serialization settings.</summary>
    public const int Id = 7201;

    /// <summary>The JSON options of the journal: enums as names, configs as their own JSON.</summary>
    public static JsonSerializerOptions Options { get; } = new()
    {
        Converters = { new JsonStringEnumConverter(), new ConfigJsonConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override string Manifest(object o) => EventSchema.ManifestOf(o.GetType());

    /// <inheritdoc />
    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), Options);

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, string manifest) =>
        JsonSerializer.Deserialize(bytes, EventSchema.TypeOf(manifest), Options)
        ?? throw new InvalidOperationException($"the journal holds a null '{manifest}' event");

    /// <summary>The JSON of a journaled value (as the journal stores it).</summary>
    public static string ToJson(object value) => Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(value, value.GetType(), Options));

    /// <summary>Reads a journaled value from its JSON.</summary>
    public static T FromJson<T>(string json) => JsonSerializer.Deserialize<T>(json, Options)
        ?? throw new InvalidOperationException($"no {typeof(T).Name} in '{json}'");

    /// <summary>A <see cref="Config"/> is written as its own JSON object and read back with its value types.</summary>
    private sealed class ConfigJsonConverter : JsonConverter<Config>
    {
        public override Config Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var document = JsonDocument.ParseValue(ref reader);
            return Config.FromJson(document.RootElement.GetRawText());
        }

        public override void Write(Utf8JsonWriter writer, Config value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.ToJson());
    }
}
