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
    /// <remarks>
    /// The tables are created here, with the statements Akka.Persistence.Sql itself would run (as its SQLite schema
    /// stores them), and its own initialization is off: through linq2db it cost a cold process about 0.7 s before the
    /// first event could be read.
    /// </remarks>
    public static Config Sqlite(string databaseFile)
    {
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={databaseFile}"))
        {
            connection.Open();
            using var schema = connection.CreateCommand();
            schema.CommandText = "PRAGMA journal_mode=WAL;" + SqliteSchema;
            schema.ExecuteNonQuery();
        }
        return Sql($"Data Source={databaseFile}", "SQLite.MS", parallelism: 1, autoInitialize: false);
    }

    /// <summary>Akka.Persistence.Sql's SQLite tables and indexes (journal, tags, snapshot), created when missing.</summary>
    private const string SqliteSchema = """
        CREATE TABLE IF NOT EXISTS [journal]
        (
        	[ordering]        INTEGER        NOT NULL PRIMARY KEY AUTOINCREMENT,
        	[created]         INTEGER        NOT NULL,
        	[deleted]         Bit            NOT NULL,
        	[persistence_id]  NVarChar(255)  NOT NULL,
        	[sequence_number] INTEGER        NOT NULL,
        	[message]         VarBinary      NOT NULL,
        	[manifest]        NVarChar(500)      NULL,
        	[identifier]      INTEGER            NULL,
        	[writer_uuid]     NVarChar(128)      NULL
        );
        CREATE UNIQUE INDEX IF NOT EXISTS journal_uq ON journal (persistence_id, sequence_number);
        CREATE INDEX IF NOT EXISTS journal_created_idx ON journal (created);
        CREATE INDEX IF NOT EXISTS journal_sequence_number_idx ON journal (sequence_number);
        CREATE TABLE IF NOT EXISTS [tags]
        (
        	[ordering_id]    INTEGER       NOT NULL,
        	[tag]            NVarChar(64)  NOT NULL,
        	[sequence_nr]    INTEGER       NOT NULL,
        	[persistence_id] NVarChar(255) NOT NULL,

        	CONSTRAINT [PK_tags] PRIMARY KEY ([ordering_id], [tag])
        );
        CREATE INDEX IF NOT EXISTS tags_persistence_id_sequence_nr_idx ON tags (persistence_id, sequence_nr);
        CREATE INDEX IF NOT EXISTS tags_tag_idx ON tags (tag);
        CREATE TABLE IF NOT EXISTS [snapshot]
        (
        	[persistence_id]  NVarChar(255) NOT NULL,
        	[sequence_number] INTEGER       NOT NULL,
        	[created]         INTEGER       NOT NULL,
        	[snapshot]        VarBinary         NULL,
        	[manifest]        NVarChar(500)     NULL,
        	[serializer_id]   INTEGER           NULL,

        	CONSTRAINT [PK_snapshot] PRIMARY KEY ([persistence_id], [sequence_number])
        );
        CREATE INDEX IF NOT EXISTS snapshot_sequence_number_idx ON snapshot (sequence_number);
        CREATE INDEX IF NOT EXISTS snapshot_created_idx ON snapshot (created);
        """;

    /// <summary>
    /// What keeps an existing SQLite journal from being resumed, read without changing it (read-only: no table is
    /// created, no log is checkpointed): the file is missing, is not a database, or holds no journal or no events (a lost
    /// <c>-wal</c> file leaves a database without them). Null when it holds events.
    /// </summary>
    public static string? SqliteProblem(string databaseFile)
    {
        var log = databaseFile + "-wal";
        var lostLog = File.Exists(log) ? "" : $" ({Path.GetFileName(log)} is missing: the events of a fit killed before its end are in that file)";
        if (!File.Exists(databaseFile)) return "does not exist";
        try
        {
            // Without its log the file is read as immutable, so that SQLite creates no -wal or -shm file beside it.
            var source = lostLog.Length == 0 ? databaseFile : new Uri(Path.GetFullPath(databaseFile)).AbsoluteUri + "?immutable=1";
            using var connection = new Microsoft.Data.Sqlite.SqliteConnection(
                new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = source, Mode = Microsoft.Data.Sqlite.SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            connection.Open();
            using var tables = connection.CreateCommand();
            tables.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'";
            if (Convert.ToInt64(tables.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
                return $"has no journal table{lostLog}";
            using var events = connection.CreateCommand();
            events.CommandText = "SELECT count(*) FROM journal";
            return Convert.ToInt64(events.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0 ? $"holds no events{lostLog}" : null;
        }
        catch (Microsoft.Data.Sqlite.SqliteException e)
        {
            return $"cannot be read as a SQLite database: {e.Message}";
        }
    }

    /// <summary>
    /// Copies a SQLite journal's write-ahead log into its database file (at a fit's end and an epoch's, so that the
    /// file holds the experiment and not a 4 KB shell); without blocking the journal's writer. Best effort.
    /// </summary>
    public static void CheckpointSqlite(string databaseFile)
    {
        if (!File.Exists(databaseFile)) return;
        try
        {
            using var connection = new Microsoft.Data.Sqlite.SqliteConnection(
                new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder { DataSource = databaseFile, Mode = Microsoft.Data.Sqlite.SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
            connection.Open();
            using var checkpoint = connection.CreateCommand();
            checkpoint.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
            checkpoint.ExecuteNonQuery();
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            // busy or unreadable: the next safe point tries again, and SQLite checkpoints on its own past 1,000 pages
        }
    }

    /// <summary>The SQLite file the journal of <paramref name="config"/> writes; null for another journal (PostgreSQL, memory).</summary>
    public static string? SqliteFileOf(Config config)
    {
        const string path = "akka.persistence.journal.sql";
        if (!config.HasPath($"{path}.connection-string") || !config.GetString($"{path}.provider-name", "").StartsWith("SQLite", StringComparison.Ordinal))
            return null;
        var source = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(config.GetString($"{path}.connection-string")).DataSource;
        return string.IsNullOrEmpty(source) ? null : Path.GetFullPath(source);
    }

    /// <summary>A PostgreSQL database (provider <c>PostgreSQL.15</c>), by connection string.</summary>
    public static Config PostgreSql(string connectionString) => Sql(connectionString, "PostgreSQL.15", parallelism: 3);

    /// <summary>Journal and snapshots in memory: nothing survives the process (persistence off).</summary>
    public static Config InMemory { get; } = ConfigurationFactory.ParseString("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        """);

    /// <summary>Akka.Persistence.Sql on <paramref name="connectionString"/> with the linq2db provider <paramref name="provider"/>.</summary>
    public static Config Sql(string connectionString, string provider, int parallelism, bool autoInitialize = true)
    {
        var quoted = Quote(connectionString);
        var initialize = autoInitialize ? "on" : "off";
        var hocon = $$"""
            akka.persistence {
              journal {
                plugin = "akka.persistence.journal.sql"
                sql { connection-string = {{quoted}}, provider-name = "{{provider}}", parallelism = {{parallelism}}, auto-initialize = {{initialize}} }
              }
              snapshot-store {
                plugin = "akka.persistence.snapshot-store.sql"
                sql { connection-string = {{quoted}}, provider-name = "{{provider}}", auto-initialize = {{initialize}} }
              }
              query.journal.sql { connection-string = {{quoted}}, provider-name = "{{provider}}", write-plugin = "akka.persistence.journal.sql" }
            }
            """;
        return ConfigurationFactory.ParseString(hocon).WithFallback(SqlPersistence.DefaultConfiguration);
    }

    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}
