using Akka.Actor;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using RapidFire.Actors.Runs;

namespace RapidFire.Actors.Persistence;

/// <summary>Reads a run's whole journal (every event, not only those after its latest snapshot), for projections.</summary>
public static class JournalHistory
{
    /// <summary>Every event of run <paramref name="runId"/> journaled under <paramref name="idPrefix"/>, in order.</summary>
    public static async Task<IReadOnlyList<IRunEvent>> RunEventsAsync(ActorSystem system, string idPrefix, int runId)
    {
        var journal = PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
        var envelopes = await journal.CurrentEventsByPersistenceId($"{idPrefix}run-{runId}", 0, long.MaxValue)
            .RunWith(Sink.Seq<EventEnvelope>(), system.Materializer());
        return envelopes.Select(e => e.Event).OfType<IRunEvent>().ToList();
    }
}
