using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using System.Text.RegularExpressions;
using Npgsql;

namespace RapidFire.Tests;

/// <summary>
/// A throwaway PostgreSQL server for tests: a fresh cluster in a temp folder (initdb, UTF8, trust auth), served by
/// <c>postgres</c> on a free port of 127.0.0.1, its unix socket in the temp folder. Stopped (immediate shutdown) and
/// deleted on dispose. Use it as an <c>IClassFixture&lt;PostgresServer&gt;</c>, through the
/// <see cref="PostgresCollection"/> collection (one server per test assembly), or on its own with
/// <see cref="StartAsync"/>; give each test its own database with <see cref="CreateDatabase"/>.
/// </summary>
/// <remarks>
/// initdb and postgres refuse to run as root, so a root test process runs them as the <c>postgres</c> system user
/// (created by Debian's package) through <c>setpriv</c>, which execs in place: the process we start is the
/// postmaster itself, so stopping it needs no signal forwarding. Missing binaries fail the test, never skip it:
/// <c>bash scripts/test.sh</c> installs them.
/// </remarks>
public sealed class PostgresServer : IAsyncLifetime, IDisposable
{
    /// <summary>The superuser initdb creates; trust auth, so no password.</summary>
    public const string Superuser = "postgres";

    private const string ServerUser = "postgres";
    private const string DirectoryPrefix = "rapidfire-pg-";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan InitDbTimeout = TimeSpan.FromSeconds(120);
    private static readonly Lazy<bool> LeftoversSwept = new(SweepLeftovers);
    private static readonly Lazy<string?> Setpriv = new(() => (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).Append("/usr/bin")
        .Select(dir => Path.Combine(dir, "setpriv")).FirstOrDefault(File.Exists));
    private static readonly Regex DatabaseName = new("^[A-Za-z_][A-Za-z0-9_]{0,62}$", RegexOptions.CultureInvariant);

    private readonly StringBuilder log = new();
    private readonly List<string> handedOut = [];
    private Process? server;
    private string? root;
    private int stopped;

    /// <summary>The folder holding the server binaries in use (initdb, postgres).</summary>
    public string BinDirectory { get; private set; } = "";

    /// <summary>The cluster's data directory, inside the temp folder.</summary>
    public string DataDirectory { get; private set; } = "";

    /// <summary>The TCP port on 127.0.0.1.</summary>
    public int Port { get; private set; }

    /// <summary>Connects as <see cref="Superuser"/> to the <c>postgres</c> database.</summary>
    public string ConnectionString { get; private set; } = "";

    /// <summary>How long initdb took.</summary>
    public TimeSpan InitDbTime { get; private set; }

    /// <summary>From starting <c>postgres</c> until it accepted a connection.</summary>
    public TimeSpan ReadyTime { get; private set; }

    /// <summary>What the server wrote to stdout and stderr so far.</summary>
    public string ServerLog
    {
        get { lock (log) return log.ToString(); }
    }

    /// <summary>Starts a server outside xunit's fixture life cycle; dispose it to stop it.</summary>
    public static async Task<PostgresServer> StartAsync()
    {
        var server = new PostgresServer();
        await server.InitializeAsync();
        return server;
    }

    /// <summary>Creates the cluster and starts the server; returns once it accepts connections.</summary>
    public async Task InitializeAsync()
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the PostgreSQL test server runs on Linux only");
        BinDirectory = FindBinDirectory() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries (initdb, postgres) were not found in /usr/lib/postgresql/<version>/bin nor on " +
            "PATH. `bash scripts/test.sh` installs them (Debian package 'postgresql'); or run " +
            "`apt-get install postgresql` as root.");
        _ = LeftoversSwept.Value;
        AppDomain.CurrentDomain.ProcessExit += StopOnExit;
        try
        {
            await CreateAndStartAsync();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    [UnsupportedOSPlatform("windows")]
    private async Task CreateAndStartAsync()
    {
        root = CreateRootDirectory();
        DataDirectory = Path.Combine(root, "data");
        var initdb = Stopwatch.StartNew();
        await InitDbAsync();
        InitDbTime = initdb.Elapsed;

        // The free port is found by binding port 0 and letting go; another process may take it in between, so a
        // server that could not bind is started again on a new port.
        for (var attempt = 1; ; attempt++)
        {
            Port = FreeLoopbackPort();
            var ready = Stopwatch.StartNew();
            StartServer();
            if (await WaitUntilReadyAsync(canRetryPort: attempt < 5))
            {
                ReadyTime = ready.Elapsed;
                break;
            }
        }
        ConnectionString = Remember(Connection(Superuser, "postgres").ConnectionString);
    }

    /// <summary>Creates an empty database and returns a connection string for it (as <see cref="Superuser"/>).</summary>
    /// <param name="name">Letters, digits and underscores, starting with a letter or underscore, at most 63;
    /// case is kept.</param>
    public string CreateDatabase(string name)
    {
        CheckDatabaseName(name);
        using (var connection = new NpgsqlConnection(ConnectionString))
        {
            connection.Open();
            using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            create.ExecuteNonQuery();
        }
        return Remember(Connection(Superuser, name).ConnectionString);
    }

    /// <summary>Creates an empty database and returns a connection string for it (as <see cref="Superuser"/>).</summary>
    /// <param name="name">Letters, digits and underscores, starting with a letter or underscore, at most 63;
    /// case is kept.</param>
    /// <param name="cancellationToken">Cancels the creation.</param>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        CheckDatabaseName(name);
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }
        return Remember(Connection(Superuser, name).ConnectionString);
    }

    /// <summary>Stops the server (immediate shutdown) and deletes its temp folder.</summary>
    public Task DisposeAsync()
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Stops the server (immediate shutdown) and deletes its temp folder.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref stopped, 1) == 1) return;
        AppDomain.CurrentDomain.ProcessExit -= StopOnExit;

        // Idle pooled connections would point at a dead server; close them while it still answers.
        lock (handedOut)
            foreach (var connectionString in handedOut)
                NpgsqlConnection.ClearPool(new NpgsqlConnection(connectionString));
        StopServer();
        if (root is not null)
        {
            try { Directory.Delete(root, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private void StopOnExit(object? sender, EventArgs e) => Dispose();

    private void StopServer()
    {
        if (server is null) return;
        try
        {
            // SIGQUIT is PostgreSQL's immediate shutdown (pg_ctl stop -m immediate): no checkpoint, children quit.
            var quit = server.HasExited || Kill(server.Id, SigQuit) == 0;
            if (!quit || !server.WaitForExit(10_000))
            {
                server.Kill(entireProcessTree: true);
                server.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { } // it had exited already
        server.Dispose();
        server = null;
    }

    private NpgsqlConnectionStringBuilder Connection(string user, string database) => new()
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = user,
        Database = database,
        SslMode = SslMode.Disable,
    };

    private string Remember(string connectionString)
    {
        lock (handedOut) handedOut.Add(connectionString);
        return connectionString;
    }

    private static void CheckDatabaseName(string name)
    {
        if (!DatabaseName.IsMatch(name))
            throw new ArgumentException(
                $"database name '{name}': use letters, digits and underscores, starting with a letter or underscore, " +
                "at most 63 characters", nameof(name));
    }

    /// <summary>The newest <c>/usr/lib/postgresql/&lt;version&gt;/bin</c> with initdb and postgres, else PATH.</summary>
    internal static string? FindBinDirectory()
    {
        static bool Exists(string file) // through links: a link left behind by an uninstall does not count
        {
            var info = new FileInfo(file);
            return info.LinkTarget is null ? info.Exists : info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
        }
        static bool HasServer(string dir) =>
            Exists(Path.Combine(dir, "initdb")) && Exists(Path.Combine(dir, "postgres"));

        const string debian = "/usr/lib/postgresql";
        if (Directory.Exists(debian))
        {
            var newest = Directory.GetDirectories(debian)
                .Select(dir => (Bin: Path.Combine(dir, "bin"),
                    Version: decimal.TryParse(Path.GetFileName(dir), NumberStyles.AllowDecimalPoint,
                        CultureInfo.InvariantCulture, out var version) ? version : -1))
                .Where(candidate => candidate.Version >= 0 && HasServer(candidate.Bin))
                .OrderByDescending(candidate => candidate.Version)
                .Select(candidate => candidate.Bin)
                .FirstOrDefault();
            if (newest is not null) return newest;
        }
        return (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .FirstOrDefault(HasServer);
    }

    [UnsupportedOSPlatform("windows")]
    private static string CreateRootDirectory()
    {
        var baseDirectory = Path.GetTempPath();
        // As root the folder is handed to the server user, who must be able to reach it (TMPDIR may be private).
        if (Environment.IsPrivilegedProcess && !EveryoneCanTraverse(baseDirectory)) baseDirectory = "/tmp";
        var directory = Path.Combine(baseDirectory, DirectoryPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // The owner's pid lets a later test process clean up after one that was killed (see SweepLeftovers).
        File.WriteAllText(Path.Combine(directory, "owner.pid"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        if (Environment.IsPrivilegedProcess)
        {
            var (uid, gid) = ServerUserIds();
            if (Chown(directory, uid, gid) != 0)
                throw new InvalidOperationException(
                    $"could not hand {directory} to the '{ServerUser}' user (errno {Marshal.GetLastPInvokeError()})");
        }
        return directory;
    }

    [UnsupportedOSPlatform("windows")]
    private static bool EveryoneCanTraverse(string directory)
    {
        for (var dir = new DirectoryInfo(directory); dir is not null; dir = dir.Parent)
            if (!dir.UnixFileMode.HasFlag(UnixFileMode.OtherExecute))
                return false;
        return true;
    }

    private static (uint Uid, uint Gid) ServerUserIds()
    {
        var entry = File.Exists("/etc/passwd")
            ? File.ReadLines("/etc/passwd").Select(line => line.Split(':')).FirstOrDefault(f => f.Length > 3 && f[0] == ServerUser)
            : null;
        if (entry is null || !uint.TryParse(entry[2], out var uid) || !uint.TryParse(entry[3], out var gid))
            throw new InvalidOperationException(
                $"running as root, but there is no '{ServerUser}' system user to run initdb and postgres (they refuse " +
                "to run as root). Debian's package 'postgresql' creates it: `bash scripts/test.sh` installs it.");
        return (uid, gid);
    }

    /// <summary>Runs a server binary as the current user, or as the server user when the process is root.</summary>
    private ProcessStartInfo ServerProcess(string binary, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo
        {
            WorkingDirectory = root!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.Environment["LC_ALL"] = "C"; // English messages: the port-conflict check reads them
        if (Environment.IsPrivilegedProcess)
        {
            start.FileName = Setpriv.Value ?? throw new InvalidOperationException(
                $"running as root, initdb and postgres must run as the '{ServerUser}' user (they refuse root), and " +
                "setpriv (util-linux) was not found on PATH");
            foreach (var a in new[] { $"--reuid={ServerUser}", $"--regid={ServerUser}", "--init-groups", "--" })
                start.ArgumentList.Add(a);
            start.ArgumentList.Add(Path.Combine(BinDirectory, binary));
        }
        else
        {
            start.FileName = Path.Combine(BinDirectory, binary);
        }
        foreach (var a in arguments) start.ArgumentList.Add(a);
        return start;
    }

    private async Task InitDbAsync()
    {
        using var initdb = Process.Start(ServerProcess("initdb", [
            "-D", DataDirectory, "-U", Superuser, "-E", "UTF8", "--no-locale",
            "--auth-local=trust", "--auth-host=trust", "--no-sync",
        ]))!;
        initdb.StandardInput.Close();
        var output = initdb.StandardOutput.ReadToEndAsync();
        var errors = initdb.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(InitDbTimeout);
        try
        {
            await initdb.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            initdb.Kill(entireProcessTree: true);
            throw new InvalidOperationException(
                $"initdb ({BinDirectory}) did not finish within {InitDbTimeout.TotalSeconds} s:\n{await output}{await errors}");
        }
        if (initdb.ExitCode != 0)
            throw new InvalidOperationException(
                $"initdb ({BinDirectory}) failed with exit code {initdb.ExitCode}:\n{await output}{await errors}");
    }

    private void StartServer()
    {
        StopServer();
        lock (log) log.Clear();
        // Unix sockets live in the temp folder; a path too long for a socket (107 bytes) means TCP only.
        var socketDirectory = root!.Length + 20 < 100 ? root : "";
        server = new Process
        {
            StartInfo = ServerProcess("postgres", [
                "-D", DataDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture),
                "-c", "listen_addresses=127.0.0.1", "-c", $"unix_socket_directories={socketDirectory}",
                // A test server: durability against power loss is not needed, speed is.
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200", "-c", "shared_buffers=32MB",
            ]),
        };
        server.OutputDataReceived += AppendLog;
        server.ErrorDataReceived += AppendLog;
        server.Start();
        server.StandardInput.Close();
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
    }

    private void AppendLog(object sender, DataReceivedEventArgs line)
    {
        if (line.Data is null) return;
        lock (log)
        {
            // Keep the tail: a long test run must not grow the log without bound.
            if (log.Length > 1_000_000) log.Remove(0, 500_000);
            log.AppendLine(line.Data);
        }
    }

    /// <summary>Polls with Npgsql until the server accepts a connection; false when it lost its port.</summary>
    private async Task<bool> WaitUntilReadyAsync(bool canRetryPort)
    {
        var poll = Connection(Superuser, "postgres");
        poll.Pooling = false;
        poll.Timeout = 2;
        var deadline = Stopwatch.StartNew();
        Exception? last = null;
        while (deadline.Elapsed < ReadyTimeout)
        {
            if (server!.HasExited)
            {
                server.WaitForExit(); // flushes the log readers
                var serverLog = ServerLog;
                if (canRetryPort && (serverLog.Contains("could not bind") || serverLog.Contains("Address already in use")))
                    return false;
                throw new InvalidOperationException(
                    $"postgres ({BinDirectory}) exited with code {server.ExitCode} while starting on 127.0.0.1:{Port}; " +
                    $"server log:\n{serverLog}");
            }
            try
            {
                await using var connection = new NpgsqlConnection(poll.ConnectionString);
                await connection.OpenAsync();
                return true;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                last = e;
                await Task.Delay(25);
            }
        }
        throw new InvalidOperationException(
            $"postgres ({BinDirectory}) did not accept connections on 127.0.0.1:{Port} within " +
            $"{ReadyTimeout.TotalSeconds} s (last error: {last?.Message}); server log:\n{ServerLog}");
    }

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// A test process killed before it disposed its servers (Ctrl+C, a hang timeout) leaves them running. Once per
    /// process, stop the servers of temp folders whose owner process is gone and delete those folders. A server is
    /// killed only when its working directory is that folder's data directory, so a forged pid file cannot aim
    /// the kill elsewhere.
    /// </summary>
    private static bool SweepLeftovers()
    {
        foreach (var baseDirectory in new[] { Path.GetTempPath(), "/tmp" }.Distinct())
        {
            string[] candidates;
            try { candidates = Directory.GetDirectories(baseDirectory, DirectoryPrefix + "*"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var directory in candidates)
            {
                try
                {
                    var ownerFile = Path.Combine(directory, "owner.pid");
                    if (!File.Exists(ownerFile) || !int.TryParse(File.ReadAllText(ownerFile), out var owner)) continue;
                    if (owner == Environment.ProcessId || Directory.Exists($"/proc/{owner}")) continue;
                    var data = Path.Combine(directory, "data");
                    var pidFile = Path.Combine(data, "postmaster.pid");
                    if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var postmaster)
                        && new DirectoryInfo($"/proc/{postmaster}/cwd").LinkTarget == data)
                    {
                        Kill(postmaster, SigKill);
                        for (var i = 0; i < 50 && Directory.Exists($"/proc/{postmaster}"); i++) Thread.Sleep(20);
                    }
                    Directory.Delete(directory, recursive: true);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        return true;
    }

    private const int SigKill = 9;
    private const int SigQuit = 3;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "chown", SetLastError = true)]
    private static extern int Chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint owner, uint group);
}

/// <summary>Test classes marked <c>[Collection(PostgresCollection.Name)]</c> share one <see cref="PostgresServer"/>.</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "PostgreSQL server";
}
