using Akka.Actor;
using Akka.Configuration;
using Akka.Configuration.Hocon;
using RapidFire.Actors;
using RapidFire.Host.Configuration;
using ConfigException = RapidFire.Spec.ConfigException;
using HoconConfig = Akka.Configuration.Config;

namespace RapidFire.Host.Tests.Configuration;

/// <summary>The configuration profiles of config/ and their layering under appsettings.json and environment variables.</summary>
public sealed class RapidFireConfigurationTests : IDisposable
{
    private static readonly Dictionary<string, string?> NoEnvironment = [];
    private readonly string folder = Directory.CreateTempSubdirectory("rapidfire-config-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static HoconConfig Load(IEnumerable<string> profiles, string? appSettings = null, Dictionary<string, string?>? environment = null) =>
        RapidFireConfiguration.Load(profiles, appSettings, environment ?? NoEnvironment);

    [Fact]
    public void Environment_beats_appsettings_beats_later_profiles_beats_earlier_profiles_beats_reference()
    {
        var first = Write("first.conf", "rapidfire { chunks = 2, prefetch = 2, seed = 7, loaders = 5 }");
        var second = Write("second.conf", "rapidfire { prefetch = 3, seed = 8 }");
        var appSettings = Write("appsettings.json", """{ "rapidfire": { "chunks": 6, "prefetch": 6 } }""");
        var environment = new Dictionary<string, string?> { ["RAPIDFIRE__CHUNKS"] = "8" };

        var settings = RuntimeSettings.From(Load([first, second], appSettings, environment));

        Assert.Equal(8, settings.Chunks);          // environment over appsettings.json and first.conf
        Assert.Equal(6, settings.Prefetch);        // appsettings.json over both profiles
        Assert.Equal(8, settings.Seed);            // second.conf over first.conf
        Assert.Equal(5, settings.Loaders);         // first.conf, set nowhere else
        Assert.Equal(100, settings.SnapshotEvery); // reference.conf, set nowhere
    }

    [Fact]
    public void The_built_in_profiles_are_embedded_cluster_and_postgres()
    {
        Assert.Equal(new[] { "cluster", "embedded", "postgres" }, RapidFireConfiguration.ProfileNames);
    }

    [Theory]
    [InlineData("embedded")]
    [InlineData("cluster")]
    [InlineData("postgres")]
    [InlineData("CLUSTER")]
    public void Every_built_in_profile_parses_and_gives_valid_runtime_settings(string profile)
    {
        var config = Load([profile]);

        Assert.False(config.IsEmpty);
        var settings = RuntimeSettings.From(config);
        Assert.Equal("cpu", settings.Devices);
        Assert.Contains(config.WithFallback(RuntimeSettings.Reference).GetString("rapidfire.journal.provider"), new[] { "sqlite", "postgresql", "memory" });
    }

    [Fact]
    public void A_profile_file_of_the_repository_is_the_one_built_into_the_assembly()
    {
        foreach (var name in RapidFireConfiguration.ProfileNames)
        {
            var file = Path.Combine(RepoPaths.Root, "config", name + ".conf");
            Assert.Equal(Leaves(ConfigurationFactory.ParseString(File.ReadAllText(file))), Leaves(Load([file])));
            Assert.Equal(Leaves(Load([file])), Leaves(Load([name])));
        }
    }

    [Fact]
    public void The_embedded_profile_restates_the_reference_defaults()
    {
        var embedded = Leaves(Load(["embedded"]));
        var reference = Leaves(RuntimeSettings.Reference);

        Assert.Equal("local", embedded["akka.actor.provider"]);
        Assert.Equal("sqlite", embedded["rapidfire.journal.provider"]);
        foreach (var (path, value) in embedded.Where(e => e.Key.StartsWith("rapidfire.", StringComparison.Ordinal)))
        {
            Assert.True(reference.ContainsKey(path), $"{path} is in embedded.conf but not in reference.conf");
            Assert.True(reference[path] == value, $"{path} is {value} in embedded.conf but {reference[path]} in reference.conf");
        }
    }

    [Fact]
    public void The_cluster_profile_turns_on_the_cluster_provider_and_the_keep_majority_split_brain_resolver()
    {
        var config = Load(["cluster"]);

        Assert.Equal("cluster", config.GetString("akka.actor.provider"));
        Assert.Equal("127.0.0.1", config.GetString("akka.remote.dot-netty.tcp.hostname"));
        Assert.Equal(0, config.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Empty(config.GetStringList("akka.cluster.seed-nodes"));
        Assert.Empty(config.GetStringList("akka.cluster.roles"));
        Assert.Equal("Akka.Cluster.SBR.SplitBrainResolverProvider, Akka.Cluster", config.GetString("akka.cluster.downing-provider-class"));
        Assert.Equal("keep-majority", config.GetString("akka.cluster.split-brain-resolver.active-strategy"));
        Assert.Equal(TimeSpan.FromSeconds(20), config.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal("on", config.GetString("akka.cluster.split-brain-resolver.down-all-when-unstable"));
        Assert.Equal(TimeSpan.FromSeconds(10), config.GetTimeSpan("akka.cluster.failure-detector.acceptable-heartbeat-pause"));
        Assert.Equal(4_000_000, config.GetByteSize("akka.remote.dot-netty.tcp.maximum-frame-size")); // room for a run state's records
    }

    [Fact]
    public async Task The_cluster_profile_starts_a_one_node_cluster_whose_downing_provider_is_the_split_brain_resolver()
    {
        var environment = new Dictionary<string, string?> { ["AKKA__CLUSTER__ROLES__0"] = "gpu" };
        var config = Load(["cluster"], environment: environment).WithFallback(RuntimeSettings.Reference);
        var system = ActorSystem.Create("rapidfire", config);
        try
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            Assert.IsType<Akka.Cluster.SBR.SplitBrainResolverProvider>(cluster.DowningProvider);
            Assert.Equal(TimeSpan.FromSeconds(10), cluster.Settings.FailureDetectorConfig.GetTimeSpan("acceptable-heartbeat-pause"));
            Assert.Equal(new[] { "gpu" }, cluster.SelfRoles.Where(r => !r.StartsWith("dc-", StringComparison.Ordinal)));
            Assert.Equal("127.0.0.1", cluster.SelfAddress.Host);
            Assert.NotEqual(0, cluster.SelfAddress.Port);

            // joined (a node that never joined waits out cluster-shutdown's 5 s timeout when its system terminates)
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            cluster.Join(cluster.SelfAddress);
            await up.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public void The_postgres_profile_switches_the_journal_to_postgresql_with_a_placeholder_connection_string()
    {
        var config = Load(["embedded", "postgres"]);

        Assert.Equal("postgresql", config.GetString("rapidfire.journal.provider"));
        Assert.Contains("Host=", config.GetString("rapidfire.journal.connection-string"));
        Assert.Equal("local", config.GetString("akka.actor.provider")); // the embedded profile's, untouched
    }

    private const string ConnectionString = """Host=db.internal:5432;Database=rapidfire;Username=rf;Password=p=ss:w;rd#1//"x"\${y},[z]""";

    [Fact]
    public void A_connection_string_with_semicolons_equals_colons_and_quotes_survives_the_environment()
    {
        var environment = new Dictionary<string, string?> { ["RAPIDFIRE__JOURNAL__CONNECTION_STRING"] = ConnectionString };

        var config = Load(["postgres"], environment: environment);

        Assert.Equal(ConnectionString, config.GetString("rapidfire.journal.connection-string"));
        Assert.Equal("postgresql", config.GetString("rapidfire.journal.provider"));
    }

    [Fact]
    public void A_connection_string_with_semicolons_equals_colons_and_quotes_survives_appsettings()
    {
        var appSettings = Write("appsettings.json", $$"""{ "rapidfire": { "journal": { "connection-string": {{System.Text.Json.JsonSerializer.Serialize(ConnectionString)}} } } }""");

        var config = Load(["postgres"], appSettings);

        Assert.Equal(ConnectionString, config.GetString("rapidfire.journal.connection-string"));
    }

    private static readonly string[] SeedNodes = ["akka.tcp://rapidfire@10.0.0.1:4053", "akka.tcp://rapidfire@coordinator.internal:4053"];

    [Fact]
    public void Seed_nodes_come_from_an_environment_variable_holding_a_json_array()
    {
        var environment = new Dictionary<string, string?> { ["AKKA__CLUSTER__SEED_NODES"] = """ ["akka.tcp://rapidfire@10.0.0.1:4053", "akka.tcp://rapidfire@coordinator.internal:4053"] """ };

        Assert.Equal(SeedNodes, Load(["cluster"], environment: environment).GetStringList("akka.cluster.seed-nodes"));
    }

    [Fact]
    public void Seed_nodes_come_from_indexed_environment_variables()
    {
        var environment = new Dictionary<string, string?>
        {
            ["AKKA__CLUSTER__SEED_NODES__1"] = SeedNodes[1],
            ["AKKA__CLUSTER__SEED_NODES__0"] = SeedNodes[0],
        };

        Assert.Equal(SeedNodes, Load(["cluster"], environment: environment).GetStringList("akka.cluster.seed-nodes"));
    }

    [Fact]
    public void Seed_nodes_and_roles_come_from_appsettings_arrays()
    {
        var appSettings = Write("appsettings.json", """
            {
              // comments and trailing commas, as in ASP.NET's appsettings
              "Logging": { "LogLevel": { "Default": "Information" } },
              "Akka": { "cluster": { "seed-nodes": ["akka.tcp://rapidfire@10.0.0.1:4053", "akka.tcp://rapidfire@coordinator.internal:4053"], "roles": ["coordinator"], }, },
            }
            """);

        var config = Load(["cluster"], appSettings);

        Assert.Equal(SeedNodes, config.GetStringList("akka.cluster.seed-nodes"));
        Assert.Equal(new[] { "coordinator" }, config.GetStringList("akka.cluster.roles"));
        Assert.False(config.HasPath("logging"));
    }

    [Fact]
    public void Environment_names_map_to_hocon_paths_with_single_underscores_as_dashes()
    {
        var environment = new Dictionary<string, string?>
        {
            ["AKKA__REMOTE__DOT_NETTY__TCP__PORT"] = "4053",
            ["AKKA__REMOTE__DOT_NETTY__TCP__PUBLIC_HOSTNAME"] = "gpu-3.internal",
            ["rapidfire__torch_threads"] = "3",
            ["RAPIDFIRE__CHECKPOINTS__LOCATION"] = "s3://bucket/prefix",
            ["RAPIDFIRE_API_TOKEN"] = "not a setting path",
            ["PATH"] = "/usr/bin",
            ["AKKA__LOGLEVEL"] = null,
        };

        var config = Load(["cluster"], environment: environment);

        Assert.Equal(4053, config.GetInt("akka.remote.dot-netty.tcp.port"));
        Assert.Equal("gpu-3.internal", config.GetString("akka.remote.dot-netty.tcp.public-hostname"));
        Assert.Equal("127.0.0.1", config.GetString("akka.remote.dot-netty.tcp.hostname")); // the profile's, beside the variables
        Assert.Equal(3, RuntimeSettings.From(config).TorchThreads);
        Assert.Equal("s3://bucket/prefix", config.GetString("rapidfire.checkpoints.location"));
        Assert.False(config.HasPath("rapidfire.api.token"));
        Assert.False(config.HasPath("akka.loglevel"));
    }

    [Fact]
    public void Values_keep_their_types()
    {
        var appSettings = Write("settings.json", """
            { "rapidfire": { "chunks": 3, "metrics": { "parquet": true }, "devices": "cpu:2", "journal": { "connection-string": null },
                             "api": { "token": "007" } } }
            """);
        var environment = new Dictionary<string, string?>
        {
            ["RAPIDFIRE__SEED"] = "-12",
            ["RAPIDFIRE__S3__REGION"] = "1.10",
            ["RAPIDFIRE__S3__ENDPOINT"] = "0123",
            ["RAPIDFIRE__S3__FORCE_PATH_STYLE"] = "true",
            ["RAPIDFIRE__S3__CACHE_DIR"] = "/tmp/my  cache",
            ["RAPIDFIRE__S3__ACCESS_KEY_ID"] = "",
        };

        var config = Load(["embedded"], appSettings, environment).WithFallback(RuntimeSettings.Reference);

        Assert.Equal(3, config.GetInt("rapidfire.chunks"));
        Assert.True(config.GetBoolean("rapidfire.metrics.parquet"));
        Assert.Equal("cpu:2", config.GetString("rapidfire.devices"));
        Assert.Equal("", config.GetString("rapidfire.journal.connection-string")); // null in JSON: the lower layers' value
        Assert.Equal("007", config.GetString("rapidfire.api.token"));
        Assert.Equal(-12L, config.GetLong("rapidfire.seed"));
        Assert.Equal("1.10", config.GetString("rapidfire.s3.region"));
        Assert.Equal("0123", config.GetString("rapidfire.s3.endpoint"));
        Assert.True(config.GetBoolean("rapidfire.s3.force-path-style"));
        Assert.Equal("/tmp/my  cache", config.GetString("rapidfire.s3.cache-dir"));
        Assert.Equal("", config.GetString("rapidfire.s3.access-key-id"));
    }

    [Fact]
    public void A_json_key_with_dots_stays_one_hocon_key()
    {
        var appSettings = Write("appsettings.json", """
            { "akka": { "actor": { "serialization-bindings": { "My.Messages.IEvent, My.Messages": "rapidfire-journal" } } } }
            """);

        var bindings = Load([], appSettings).GetConfig("akka.actor.serialization-bindings");

        Assert.Equal("rapidfire-journal", Assert.Single(bindings.AsEnumerable()).Value.GetString());
        Assert.Equal("My.Messages.IEvent, My.Messages", bindings.AsEnumerable().Single().Key);
    }

    [Fact]
    public void Appsettings_json_in_the_current_directory_is_read_when_no_path_is_given()
    {
        Write("appsettings.json", """{ "rapidfire": { "chunks": 7 } }""");
        Write("five.conf", "rapidfire.chunks = 5");
        var empty = Directory.CreateTempSubdirectory("rapidfire-config-none-").FullName;
        try
        {
            Assert.Equal(7, RapidFireConfiguration.Load(["five.conf"], null, NoEnvironment, folder).GetInt("rapidfire.chunks"));
            Assert.True(RapidFireConfiguration.Load([], null, NoEnvironment, empty).IsEmpty);
        }
        finally
        {
            Directory.Delete(empty);
        }
    }

    [Fact]
    public void A_given_appsettings_path_that_is_missing_is_refused_naming_it()
    {
        var error = Assert.Throws<ConfigException>(() => RapidFireConfiguration.Load([], "other.json", NoEnvironment, folder));

        Assert.Equal($"{Path.Combine(folder, "other.json")}: appsettings file not found", error.Message);
    }

    [Fact]
    public void An_unknown_profile_name_is_refused_naming_it_and_the_profiles()
    {
        var error = Assert.Throws<ConfigException>(() => Load(["embedded", "clutser"]));

        Assert.Contains("profile 'clutser'", error.Message);
        Assert.Contains("cluster, embedded, postgres", error.Message);
    }

    [Fact]
    public void A_missing_profile_file_is_refused_naming_the_file()
    {
        var error = Assert.Throws<ConfigException>(() => Load([Path.Combine(folder, "missing.conf")]));

        Assert.Contains(Path.Combine(folder, "missing.conf"), error.Message);
        Assert.Contains("not found", error.Message);
    }

    [Fact]
    public void Unreadable_json_is_refused_naming_the_file()
    {
        var appSettings = Write("broken.json", """{ "rapidfire": { "chunks": 8, } """);

        var error = Assert.Throws<ConfigException>(() => Load([], appSettings));

        Assert.StartsWith(appSettings + ": is not valid JSON", error.Message);
    }

    [Fact]
    public void A_section_that_is_not_an_object_is_refused_naming_the_file_and_section()
    {
        var appSettings = Write("appsettings.json", """{ "rapidfire": "chunks=8" }""");

        var error = Assert.Throws<ConfigException>(() => Load([], appSettings));

        Assert.Contains(appSettings, error.Message);
        Assert.Contains("\"rapidfire\": must be an object, not a string", error.Message);
    }

    [Theory]
    [InlineData("RAPIDFIRE__JOURNAL___PROVIDER")]
    [InlineData("RAPIDFIRE__JOURNAL__PROVIDER_")]
    [InlineData("RAPIDFIRE__")]
    [InlineData("AKKA__REMOTE__DOT-NETTY__TCP__PORT")]
    [InlineData("RAPIDFIRE__0")]
    public void A_malformed_variable_name_is_refused_naming_the_variable_and_not_its_value(string name)
    {
        var environment = new Dictionary<string, string?> { [name] = "secret-value" };

        var error = Assert.Throws<ConfigException>(() => Load([], environment: environment));

        Assert.StartsWith(name + ": ", error.Message);
        Assert.DoesNotContain("secret-value", error.Message);
    }

    [Fact]
    public void A_setting_given_by_two_variables_is_refused_naming_both()
    {
        var environment = new Dictionary<string, string?>
        {
            ["AKKA__CLUSTER__SEED_NODES"] = """["akka.tcp://rapidfire@10.0.0.1:4053"]""",
            ["AKKA__CLUSTER__SEED_NODES__0"] = "akka.tcp://rapidfire@10.0.0.2:4053",
        };

        var error = Assert.Throws<ConfigException>(() => Load([], environment: environment));

        Assert.StartsWith("AKKA__CLUSTER__SEED_NODES__0: ", error.Message);
        Assert.Contains("as AKKA__CLUSTER__SEED_NODES ", error.Message);
    }

    [Fact]
    public void A_gap_in_list_indexes_is_refused_naming_the_variable()
    {
        var environment = new Dictionary<string, string?>
        {
            ["AKKA__CLUSTER__SEED_NODES__0"] = SeedNodes[0],
            ["AKKA__CLUSTER__SEED_NODES__2"] = SeedNodes[1],
        };

        var error = Assert.Throws<ConfigException>(() => Load([], environment: environment));

        Assert.StartsWith("AKKA__CLUSTER__SEED_NODES__2: ", error.Message);
        Assert.Contains("index 1 is missing", error.Message);
    }

    /// <summary>Every leaf of the config (lists written as [a,b]) by its path.</summary>
    private static Dictionary<string, string> Leaves(HoconConfig config)
    {
        var leaves = new Dictionary<string, string>();
        Walk("", config.Root);
        return leaves;

        void Walk(string path, HoconValue value)
        {
            if (value.IsObject())
                foreach (var (key, child) in value.GetObject().Items) Walk(path.Length == 0 ? key : $"{path}.{key}", child);
            else
                leaves[path] = value.IsArray() ? "[" + string.Join(",", value.GetArray().Select(v => v.GetString())) + "]" : value.GetString();
        }
    }
}
