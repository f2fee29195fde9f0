using RapidFire.Actors;
using RapidFire.Actors.Persistence;
using RapidFire.Spec;

namespace RapidFire.Host;

/// <summary>
/// Where an experiment journals (<c>rapidfire.journal.provider</c>: sqlite, a file in the experiment folder and the
/// default; postgresql; memory), and, for SQLite, the copy of its write-ahead log into the file at safe points.
/// </summary>
internal sealed class ExperimentJournal
{
    private readonly Akka.Configuration.Config section;
    private int checkpointing;

    /// <summary>The journal of the experiment in <paramref name="folder"/> as <paramref name="user"/>'s settings choose it.</summary>
    public ExperimentJournal(Akka.Configuration.Config user, string folder)
    {
        section = user.WithFallback(RuntimeSettings.Reference).GetConfig("rapidfire.journal");
        File = IsSqlite(user) ? Path.Combine(folder, "journal.db") : null;
    }

    /// <summary>The SQLite journal's file, when the journal is one (the default).</summary>
    public string? File { get; }

    /// <summary>Whether <paramref name="user"/>'s settings journal to SQLite.</summary>
    public static bool IsSqlite(Akka.Configuration.Config user) =>
        user.WithFallback(RuntimeSettings.Reference).GetString("rapidfire.journal.provider") == "sqlite";

    /// <summary>The journal's HOCON; a SQLite file gets its tables here (after a resume has checked that it can be read).</summary>
    public Akka.Configuration.Config Hocon() => section.GetString("provider") switch
    {
        "sqlite" => JournalConfig.Sqlite(File!),
        "postgresql" => JournalConfig.PostgreSql(section.GetString("connection-string")),
        "memory" => JournalConfig.InMemory,
        var other => throw new ConfigException("rapidfire.journal.provider", $"must be sqlite, postgresql or memory, got '{other}'"),
    };

    /// <summary>
    /// Copies the SQLite journal's log into its file at a safe point (an epoch's end), off the caller's thread, one
    /// copy at a time: a lost <c>-wal</c> file then costs at most the events since.
    /// </summary>
    public void CheckpointSoon()
    {
        if (File is null || Interlocked.Exchange(ref checkpointing, 1) == 1) return;
        Task.Run(() =>
        {
            try
            {
                JournalConfig.CheckpointSqlite(File);
            }
            finally
            {
                Volatile.Write(ref checkpointing, 0);
            }
        });
    }

    /// <summary>Copies the whole SQLite journal into its file now (when the experiment closes).</summary>
    public void CheckpointNow()
    {
        if (File is not null) JournalConfig.CheckpointSqlite(File);
    }
}
