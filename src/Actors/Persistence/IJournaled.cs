namespace RapidFire.Actors.Persistence;

/// <summary>
/// Marks what is written to a journal or a snapshot store: events and snapshot states. Each such type has a
/// manifest in <see cref="EventSchema"/> and is serialized as JSON by <see cref="JournalSerializer"/>.
/// </summary>
public interface IJournaled;
