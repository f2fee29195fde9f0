using System.CommandLine;
using Akka.Actor;
using RapidFire.Actors;
using RapidFire.Actors.Cluster;
using RapidFire.Actors.Devices;
using RapidFire.Spec;
using RapidFire.Host.Hosting;

namespace RapidFire.Host.Cli;

/// <summary>
/// <c>rapidfire worker --seed-nodes akka.tcp://rapidfire@HOST:PORT --devices cuda:0,1|cpu:N [--hostname H] [--port P]
/// [--settings FILE] [--s3-endpoint URL]</c>: a worker node (cluster role <c>gpu</c>). It joins the cluster and trains
/// for every fit that asks, with its devices; the spec arrives as source from the experiment's node. It runs until
/// Ctrl+C or SIGTERM, then leaves the cluster.
/// </summary>
internal static class WorkerCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var devices = new Option<string?>("--devices") { Description = "This node's devices: cpu, cpu:N, cuda or cuda:I,J (default cpu)." };
        var settings = FitCommand.SettingsOption();
        var s3Endpoint = S3Options.Endpoint();
        var cluster = new ClusterOptions();
        var command = new Command("worker", "Join a RapidFire cluster as a worker node (role gpu): train for the fits of the experiment's node.")
        {
            devices, settings, s3Endpoint,
        };
        cluster.AddTo(command, coordinator: false);
        command.SetAction(async (parse, cancellation) =>
        {
            Akka.Configuration.Config hocon;
            IReadOnlyList<DeviceSlot> slots;
            RapidFireNode node;
            try
            {
                if (parse.GetValue(cluster.SeedNodes) is null)
                    throw new ConfigException("--seed-nodes", "a worker joins a cluster: give the experiment's node address (it prints `cluster: akka.tcp://...`)");
                hocon = cluster.Apply(parse, S3Options.Apply(parse, s3Endpoint, FitCommand.Settings(parse.GetValue(settings))), WorkerProtocol.WorkerRole, always: true)!;
                slots = DeviceSpec.Parse(parse.GetValue(devices) ?? "cpu", Experiment.CudaDevices);
                if (slots.Count == 0) throw new ConfigException("--devices", "a worker needs at least one device");
                node = RapidFireNode.Start(hocon, akka => akka.WithRapidFireWorker(slots));
            }
            catch (ConfigException e)
            {
                return RapidFireCli.Rejected(e.Problems, stderr);
            }

            using var _ = node;
            var system = node.System;
            var self = Akka.Cluster.Cluster.Get(system);
            var name = $"{self.SelfAddress.Host}:{self.SelfAddress.Port}";
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            self.RegisterOnMemberUp(() => up.TrySetResult());
            stdout.WriteLine($"worker {name}: {self.SelfAddress} with {string.Join(", ", slots.Select(s => s.Id))}; joining {string.Join(", ", self.Settings.SeedNodes)}");
            var left = system.WhenTerminated;
            if (await Task.WhenAny(up.Task, left, Task.Delay(Timeout.Infinite, cancellation).ContinueWith(_ => { })) == up.Task)
                stdout.WriteLine($"worker {name}: up; training for the fits that ask (Ctrl+C leaves the cluster)");
            await Task.WhenAny(left, Task.Delay(Timeout.Infinite, cancellation).ContinueWith(_ => { }));
            if (!left.IsCompleted)
            {
                stdout.WriteLine($"worker {name}: leaving the cluster");
                node.Stop(TimeSpan.FromSeconds(30));
            }
            stdout.WriteLine($"worker {name}: stopped");
            return 0;
        });
        return command;
    }
}
