using Akka.Configuration;
using Akka.Persistence.Sql;

namespace RapidFire.Actors.Persistence;

/// <summary>
/// Where an experiment journals: HOCON for Akka.Persistence.Sql (journal, snapshot store and query journal on the
/// same database), or in memory. The serializer bindings of <see cref="JournalSerializer"/> are in
/// <c>reference.conf</c>.
/// </summary>
public static class JournalConfig
{
    /// <summary>
    /// The embedded default: a SQLite file (one writer, so parallelism 1), in write-ahead-log mode: a commit appends to
    /// the log and syncs once, instead of syncing a rollback journal and the database.
    /// </summary>
    public static Config Sqlite(string databaseFile)
    {
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={databaseFile}"))
        {
            connection.Open();
            using var wal = connection.CreateCommand();
            wal.CommandText = "PRAGMA journal_mode=WAL;";
            wal.ExecuteNonQuery();
        }
        return Sql($"Data Source={databaseFile}", "SQLite.MS", parallelism: 1);
    }

    /// <summary>A PostgreSQL database (provider <c>PostgreSQL.15</c>), by connection string.</summary>
    public static Config PostgreSql(string connectionString) => Sql(connectionString, "PostgreSQL.15", parallelism: 3);

    /// <summary>Journal and snapshots in memory: nothing survives the process (persistence off).</summary>
    public static Config InMemory { get; } = ConfigurationFactory.ParseString("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        """);

    /// <summary>Akka.Persistence.Sql on <paramref name="connectionString"/> with the linq2db provider <paramref name="provider"/>.</summary>
    public static Config Sql(string connectionString, string provider, int parallelism)
    {
        var quoted = Quote(connectionString);
        var hocon = $$"""
            akka.persistence {
              journal {
                plugin = "akka.persistence.journal.sql"
                sql { connection-string = {{quoted}}, provider-name = "{{provider}}", parallelism = {{parallelism}}, auto-initialize = on }
              }
              snapshot-store {
                plugin = "akka.persistence.snapshot-store.sql"
                sql { connection-string = {{quoted}}, provider-name = "{{provider}}", auto-initialize = on }
              }
              query.journal.sql { connection-string = {{quoted}}, provider-name = "{{provider}}", write-plugin = "akka.persistence.journal.sql" }
            }
            """;
        return ConfigurationFactory.ParseString(hocon).WithFallback(SqlPersistence.DefaultConfiguration);
    }

    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
