using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Serialization;
using RapidFire.Actors.Persistence;

namespace RapidFire.Actors.Cluster;

/// <summary>
/// Serializes the messages that cross nodes (<see cref="IRemoteMessage"/>) as UTF-8 JSON: the journal's options
/// (configs as their own JSON, enums as names) plus actor references as their paths. The manifest is the type's full
/// name in RapidFire.Actors. Bound in <c>reference.conf</c>.
/// </summary>
public sealed class RemoteSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer's id in the actor system's serialization settings.</summary>
    public const int Id = 7202;

    private readonly JsonSerializerOptions options;

    /// <summary>Creates the serializer of <paramref name="system"/> (actor references resolve against it).</summary>
    public RemoteSerializer(ExtendedActorSystem system) : base(system)
    {
        options = new JsonSerializerOptions(JournalSerializer.Options);
        options.Converters.Add(new ActorRefConverter(system));
    }

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override string Manifest(object o) => o.GetType().FullName!;

    /// <inheritdoc />
    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj, obj.GetType(), options);

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, string manifest)
    {
        var type = typeof(RemoteSerializer).Assembly.GetType(manifest)
            ?? throw new SerializationException($"no remote message type '{manifest}' in RapidFire.Actors (a node runs another version?)");
        if (!typeof(IRemoteMessage).IsAssignableFrom(type))
            throw new SerializationException($"'{manifest}' is not a remote message");
        return JsonSerializer.Deserialize(bytes, type, options) ?? throw new SerializationException($"a null '{manifest}' message");
    }

    /// <summary>An actor reference as its serialized path, resolved by the receiving system.</summary>
    private sealed class ActorRefConverter(ExtendedActorSystem system) : JsonConverter<IActorRef>
    {
        public override IActorRef Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetString() is { } path ? system.Provider.ResolveActorRef(path) : ActorRefs.Nobody;

        public override void Write(Utf8JsonWriter writer, IActorRef value, JsonSerializerOptions options) =>
            writer.WriteStringValue(Akka.Serialization.Serialization.SerializedActorPath(value));
    }
}

/// <summary>A remote message could not be read.</summary>
public sealed class SerializationException(string message) : Exception(message);
