using Npgsql;
using RapidFire.Tests;
using Xunit.Abstractions;

namespace RapidFire.Actors.Tests;

public sealed class PostgresServerTests(PostgresServer server, ITestOutputHelper output) : IClassFixture<PostgresServer>
{
    [Fact]
    public async Task A_created_database_stores_and_returns_a_row()
    {
        output.WriteLine($"{server.BinDirectory}: initdb {server.InitDbTime.TotalMilliseconds:F0} ms, " +
                         $"ready after {server.ReadyTime.TotalMilliseconds:F0} ms, port {server.Port}");
        var connectionString = await server.CreateDatabaseAsync("stores_a_row");

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using (var create = new NpgsqlCommand(
            "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL);" +
            "INSERT INTO events VALUES (1, 'épreuve ✓');", connection))
            await create.ExecuteNonQueryAsync();
        await using var read = new NpgsqlCommand("SELECT payload FROM events WHERE id = 1", connection);

        Assert.Equal("épreuve ✓", await read.ExecuteScalarAsync());
        Assert.Equal("stores_a_row", connection.Database);
    }

    [Fact]
    public async Task The_server_reports_its_version_and_listens_on_loopback_only()
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var version = new NpgsqlCommand("SHOW server_version", connection);
        await using var listen = new NpgsqlCommand("SHOW listen_addresses", connection);

        Assert.Matches(@"^\d+(\.\d+)?", (string)(await version.ExecuteScalarAsync())!);
        Assert.Equal("127.0.0.1", await listen.ExecuteScalarAsync());
    }

    [Fact]
    public void Each_created_database_is_a_separate_empty_database()
    {
        var first = server.CreateDatabase("separate_first");
        var second = server.CreateDatabase("Separate_Second");
        using (var connection = new NpgsqlConnection(first))
        {
            connection.Open();
            using var create = new NpgsqlCommand("CREATE TABLE only_in_first (id int)", connection);
            create.ExecuteNonQuery();
        }

        using var other = new NpgsqlConnection(second);
        other.Open();
        using var count = new NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", other);
        Assert.Equal(0L, count.ExecuteScalar());
        Assert.Equal("Separate_Second", other.Database);
    }

    [Fact]
    public void A_database_name_that_is_not_a_plain_identifier_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => server.CreateDatabase("no\"quotes"));
        Assert.Contains("no\"quotes", error.Message);
    }

    [Fact]
    public async Task A_stopped_server_leaves_no_process_and_no_folder_behind()
    {
        var own = await PostgresServer.StartAsync();
        var folder = Path.GetDirectoryName(own.DataDirectory)!;
        var postmaster = int.Parse(File.ReadLines(Path.Combine(own.DataDirectory, "postmaster.pid")).First());

        own.Dispose();

        Assert.False(Directory.Exists(folder), $"{folder} still exists");
        Assert.False(Directory.Exists($"/proc/{postmaster}"), $"postgres (pid {postmaster}) still runs");
    }
}
