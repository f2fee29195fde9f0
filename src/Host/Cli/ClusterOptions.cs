using System.CommandLine;
using RapidFire.Host.Configuration;

namespace RapidFire.Host.Cli;

/// <summary>
/// The options that put a `rapidfire` process on an Akka cluster: the seed nodes to join, and the address this node
/// listens on. Giving any of them (or a profile that sets <c>akka.actor.provider = cluster</c>) makes the process a
/// cluster node with the <c>cluster</c> profile (config/cluster.conf) under the user's settings.
/// </summary>
internal sealed class ClusterOptions
{
    public Option<string?> SeedNodes { get; } = new("--seed-nodes")
    {
        Description = "Cluster nodes to join, comma-separated (akka.tcp://rapidfire@HOST:PORT); none on the first node, which forms the cluster.",
    };

    public Option<string?> Hostname { get; } = new("--hostname") { Description = "The address other nodes reach this node at (default 127.0.0.1)." };

    public Option<int?> Port { get; } = new("--port") { Description = "This node's cluster port (default: any free port; give one to the first node, so the others can name it)." };

    public Option<int?> MinWorkers { get; } = new("--min-workers")
    {
        Description = "On the experiment's node: wait until this many workers have joined before training (default 0: start with those that joined).",
    };

    public void AddTo(Command command, bool coordinator = true)
    {
        if (coordinator) command.Options.Add(MinWorkers);
        command.Options.Add(SeedNodes);
        command.Options.Add(Hostname);
        command.Options.Add(Port);
    }

    /// <summary>Whether <paramref name="settings"/> make a process a cluster node.</summary>
    public static bool IsCluster(Akka.Configuration.Config? settings) =>
        settings?.GetString("akka.actor.provider", "") is "cluster" or "Akka.Cluster.ClusterActorRefProvider, Akka.Cluster";

    /// <summary>
    /// The settings of a node of <paramref name="role"/>: <paramref name="settings"/> with the cluster profile and these
    /// options, when the node is to be on a cluster (<paramref name="always"/>, an option given, or the settings ask
    /// for it); else <paramref name="settings"/> unchanged.
    /// </summary>
    public Akka.Configuration.Config? Apply(ParseResult parse, Akka.Configuration.Config? settings, string role, bool always = false)
    {
        var seeds = parse.GetValue(SeedNodes)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
        var hostname = parse.GetValue(Hostname);
        var port = parse.GetValue(Port);
        var minWorkers = parse.GetResult(MinWorkers) is null ? null : parse.GetValue(MinWorkers);
        var clustered = always || seeds.Length > 0 || hostname is not null || port is not null || minWorkers is not null || IsCluster(settings);
        if (!clustered) return settings;
        foreach (var seed in seeds)
            if (!seed.StartsWith("akka.tcp://", StringComparison.Ordinal))
                throw new Spec.ConfigException("--seed-nodes", $"'{seed}' is not a node address: expected akka.tcp://rapidfire@HOST:PORT");
        var overrides = new List<string> { $"akka.cluster.roles = [{role}]" };
        if (seeds.Length > 0) overrides.Add($"akka.cluster.seed-nodes = [{string.Join(", ", seeds.Select(s => $"\"{s}\""))}]");
        if (hostname is not null) overrides.Add($"akka.remote.dot-netty.tcp.hostname = \"{hostname}\"");
        if (port is not null) overrides.Add($"akka.remote.dot-netty.tcp.port = {port}");
        if (minWorkers is { } wait)
            overrides.Add(wait >= 0 ? $"rapidfire.cluster.min-workers = {wait}" : throw new Spec.ConfigException("--min-workers", $"must be >= 0, got {wait}"));
        var cluster = Akka.Configuration.ConfigurationFactory.ParseString(string.Join("\n", overrides));
        return cluster.WithFallback(settings ?? Akka.Configuration.Config.Empty).WithFallback(RapidFireConfiguration.Profile("cluster"));
    }
}
