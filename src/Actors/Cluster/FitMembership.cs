using Akka.Actor;
using Akka.Cluster;
using RapidFire.Actors.Experiment;

namespace RapidFire.Actors.Cluster;

/// <summary>
/// The cluster membership of one fit, a child of its FitActor: it asks every worker node that comes up to join the
/// fit (<see cref="WorkerProtocol.JoinFit"/>, answered to the fit), watches the nodes that joined, tells the fit when
/// one leaves (<see cref="WorkerLeft"/>), and publishes when one becomes unreachable or reachable again. When the fit
/// ends it is stopped, and lets every worker go (<see cref="WorkerProtocol.LeaveFit"/>).
/// </summary>
public sealed class FitMembership : ReceiveActor
{
    /// <summary>Fit to membership: worker <paramref name="Worker"/> joined; its node's <see cref="WorkerFit"/> is <paramref name="Host"/>.</summary>
    public sealed record Watch(string Worker, IActorRef Host);

    /// <summary>Membership to fit: worker <paramref name="Worker"/> left (its node died, or was removed).</summary>
    public sealed record WorkerLeft(string Worker);

    private readonly WorkerProtocol.JoinFit join;
    private readonly IActorRef fit;
    private readonly Dictionary<IActorRef, string> workers = [];

    /// <summary>Props of the membership of the fit <paramref name="fit"/>, which asks worker nodes to join with <paramref name="join"/>.</summary>
    public static Props Props(WorkerProtocol.JoinFit join, IActorRef fit) => Akka.Actor.Props.Create(() => new FitMembership(join, fit));

    /// <summary>Creates the actor.</summary>
    public FitMembership(WorkerProtocol.JoinFit join, IActorRef fit)
    {
        this.join = join;
        this.fit = fit;
        Receive<ClusterEvent.MemberUp>(up =>
        {
            if (up.Member.Address == Akka.Cluster.Cluster.Get(Context.System).SelfAddress || !up.Member.HasRole(WorkerProtocol.WorkerRole)) return;
            Context.ActorSelection(new RootActorPath(up.Member.Address) / "user" / WorkerProtocol.WorkerName).Tell(join, fit);
        });
        Receive<Watch>(watch =>
        {
            workers[watch.Host] = watch.Worker;
            Context.Watch(watch.Host);
        });
        Receive<Terminated>(gone =>
        {
            if (workers.Remove(gone.ActorRef, out var worker)) fit.Tell(new WorkerLeft(worker));
        });
        Receive<ClusterEvent.UnreachableMember>(lost =>
        {
            if (WorkerAt(lost.Member.Address) is { } worker)
                Notice(worker, $"worker {worker} is unreachable (a network partition, or its process stopped): " +
                    "its tasks wait for it; if it stays away, the split-brain resolver removes it and its tasks are trained again elsewhere");
        });
        Receive<ClusterEvent.ReachableMember>(back =>
        {
            if (WorkerAt(back.Member.Address) is { } worker) Notice(worker, $"worker {worker} is reachable again");
        });
    }

    /// <inheritdoc />
    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
            typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.IReachabilityEvent));

    /// <inheritdoc />
    protected override void PostStop()
    {
        Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        foreach (var host in workers.Keys) host.Tell(new WorkerProtocol.LeaveFit(join.FitId));
    }

    /// <summary>The name of the worker of this fit whose node is at <paramref name="address"/>, if one is.</summary>
    private string? WorkerAt(Address address) => workers.FirstOrDefault(w => w.Key.Path.Address == address).Value;

    private void Notice(string worker, string message) =>
        Context.System.EventStream.Publish(new FitProtocol.WorkerChanged(worker, message));
}
