using System.Collections.Concurrent;
using Akka.Actor;
using RapidFire.Actors.Runs;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using static RapidFire.Actors.Data.DataLoaderProtocol;

namespace RapidFire.Actors.Data;

/// <summary>
/// The node's data loader: a pool of loader threads that prepare minibatches (<c>RowPrep</c> per row,
/// <c>CollateFn</c> per minibatch) through the node's <see cref="PreparedExamples"/> (rows prepared before are
/// gathered from it). Devices ask a bounded number of minibatches ahead, so the loaders work while the devices train
/// and memory is bounded by the prefetch window, not by the dataset.
/// </summary>
/// <remarks>
/// The user's code runs on the loader threads, never on the actor's: the actor always answers, and it watches each
/// thread's MLSpec call (<see cref="CallWatch"/>). A call that runs past <see cref="RuntimeSettings.LoaderStallSeconds"/>
/// is reported to its device (<see cref="MinibatchStalled"/>) and its thread is retired and replaced, so one run's
/// stuck <c>RowPrep</c> never holds the minibatches of the others (see <see cref="LoaderQueue"/>). A call past
/// <see cref="RuntimeSettings.SpecCallTimeout"/> (off by default) fails its minibatch, naming the method and the row
/// id; its thread is abandoned and whatever it returns later is dropped.
/// </remarks>
public sealed class DataLoaderActor : ReceiveActor, IWithTimers
{
    private sealed record WorkerFree(int Worker);

    private sealed record Watch;

    /// <summary>One minibatch being prepared; answered once, by its thread or (past the time limit) by the actor.</summary>
    private sealed class Work(PrepareMinibatch request, IActorRef replyTo)
    {
        private int answered;

        public PrepareMinibatch Request { get; } = request;
        public IActorRef ReplyTo { get; } = replyTo;
        public bool StallReported { get; set; }

        /// <summary>Claims the answer: true once, for whoever asks first.</summary>
        public bool Claim() => Interlocked.Exchange(ref answered, 1) == 0;
    }

    /// <summary>A loader thread taking one job at a time.</summary>
    private sealed class Worker
    {
        private readonly BlockingCollection<Work> inbox = new(1);

        public Worker(int id, TrainingServices services, IActorRef pool)
        {
            var thread = new Thread(() =>
            {
                Watch.Attach();
                foreach (var work in inbox.GetConsumingEnumerable())
                {
                    Prepare(services, work);
                    pool.Tell(new WorkerFree(id));
                }
            })
            {
                IsBackground = true, // a thread stuck in user code never keeps the process alive
                Name = $"rapidfire-loader-{id}",
            };
            thread.Start();
        }

        public CallWatch Watch { get; } = new();

        public void Post(Work work) => inbox.Add(work);

        public void Stop() => inbox.CompleteAdding();
    }

    private readonly TrainingServices services;
    private readonly Dictionary<long, Work> jobs = [];
    private readonly Dictionary<int, Worker> workers = [];
    private LoaderQueue queue;
    private long nextJob;

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Props of the node's loader.</summary>
    public static Props Props(TrainingServices services) => Akka.Actor.Props.Create(() => new DataLoaderActor(services));

    /// <summary>Creates the loader, with <see cref="RuntimeSettings.LoaderCount"/> threads.</summary>
    public DataLoaderActor(TrainingServices services)
    {
        this.services = services;
        queue = new LoaderQueue(services.Settings.LoaderCount);
        Receive<PrepareMinibatch>(request =>
        {
            var id = ++nextJob;
            jobs[id] = new Work(request, Sender);
            queue = queue.Enqueue(new LoaderQueue.Job(id, request.RunId));
            Dispatch();
        });
        Receive<WorkerFree>(free =>
        {
            if (queue.Busy.TryGetValue(free.Worker, out var job)) jobs.Remove(job.Id);
            (queue, var ends) = queue.Finished(free.Worker);
            if (ends && workers.Remove(free.Worker, out var worker)) worker.Stop();
            Dispatch();
        });
        Receive<Watch>(_ => WatchCalls());
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        var limits = new[] { services.Settings.LoaderStallSeconds, services.Settings.SpecCallTimeout ?? double.MaxValue };
        Timers.StartPeriodicTimer("watch", new Watch(), TimeSpan.FromSeconds(Math.Clamp(limits.Min() / 4, 0.05, 1)));
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // A call still running is answered by nobody: what it returns is dropped.
        foreach (var job in queue.Busy.Values) jobs.GetValueOrDefault(job.Id)?.Claim();
        foreach (var worker in workers.Values) worker.Stop();
    }

    private void Dispatch()
    {
        (queue, var hired, var assigned) = queue.Assign();
        foreach (var id in hired) workers[id] = new Worker(id, services, Self);
        foreach (var (worker, job) in assigned) workers[worker].Post(jobs[job.Id]);
    }

    /// <summary>Reports the calls that have stalled (once each, retiring their threads) and fails those past the time limit.</summary>
    private void WatchCalls()
    {
        var changed = false;
        foreach (var (id, job) in queue.Busy)
        {
            if (workers[id].Watch.Current is not { } call || !jobs.TryGetValue(job.Id, out var work)) continue;
            var key = work.Request.Key;
            if (services.Settings.SpecCallTimeout is { } limit && call.Elapsed.TotalSeconds > limit && work.Claim())
            {
                work.ReplyTo.Tell(new MinibatchFailed(key, new RunFailure(call.Method,
                    $"did not return within {limit:0.###} s (rapidfire.spec-call-timeout); its thread is abandoned",
                    work.Request.Mode.ToName(), RowId: call.RowId)));
                queue = queue.Retire(id);
                changed = true;
            }
            else if (!work.StallReported && call.Elapsed.TotalSeconds > services.Settings.LoaderStallSeconds)
            {
                work.StallReported = true;
                work.ReplyTo.Tell(new MinibatchStalled(key, $"{call} has not returned for {call.Elapsed.TotalSeconds:0} s"));
                queue = queue.Retire(id);
                changed = true;
            }
        }
        if (changed) Dispatch();
    }

    /// <summary>Runs the user's preprocessing for one minibatch (see <see cref="MinibatchPreparation"/>) and answers, unless answered already.</summary>
    private static void Prepare(TrainingServices services, Work work)
    {
        var request = work.Request;
        PreparedMinibatch? prepared = null;
        RunFailure? failure = null;
        try
        {
            var spec = services.Specs.Get(request.RunId, request.Config, request.Mode);
            var table = SpecCall.Run("data", () => services.Partition(request.Mode));
            prepared = services.Prepared.Prepare(spec, table, request.Rows, request.Config, request.Mode);
            if (request.TorchDevice != "cpu") prepared = prepared with { Batch = DeviceCopy.ToDevice(prepared.Batch, request.TorchDevice) };
        }
        catch (Exception e)
        {
            failure = RunFailureException.Of(e) with { Mode = request.Mode.ToName() };
        }
        if (!work.Claim())
        {
            // Answered already (past the time limit, or the loader stopped): nobody takes it.
            if (prepared is not null) TensorTree.Dispose(prepared.Batch.Value);
            return;
        }
        if (prepared is null)
        {
            work.ReplyTo.Tell(new MinibatchFailed(request.Key, failure!));
            return;
        }
        services.Exchange.Put(request.Key, prepared);
        work.ReplyTo.Tell(new MinibatchReady(request.Key));
    }
}
