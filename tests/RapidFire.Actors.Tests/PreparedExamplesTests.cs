using RapidFire.Actors.Data;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;
using static TorchSharp.torch;
using Cfg = RapidFire.Spec.Config;

namespace RapidFire.Actors.Tests;

/// <summary>The prepared-example cache on its own: what it serves equals what RowPrep and the collate give, once per row.</summary>
public sealed class PreparedExamplesTests : IDisposable
{
    private readonly TinyData data = new(train: 40, validation: 8);
    private readonly EsfTable train;
    private readonly List<string> notes = [];

    public PreparedExamplesTests() => train = data.Handle.Open(Mode.Train);

    public void Dispose() => data.Dispose();

    /// <summary>TinySpec's RowPrep, counted, scaled by the knob <c>scale</c> when it reads it, random when asked.</summary>
    private class CountingSpec(bool readsScale = false, bool random = false, bool cache = true) : MLSpec
    {
        private readonly TinySpec tiny = new();
        public int Calls;

        public override bool CacheRowPrep => cache;

        public override object RowPrep(Row row, Cfg cfg, Mode mode)
        {
            Interlocked.Increment(ref Calls);
            var example = (Dictionary<string, object>)tiny.RowPrep(row, cfg, mode);
            if (readsScale) example["x"] = ((Tensor)example["x"]).mul(cfg.Get("scale", 1.0));
            if (random) example["x"] = ((Tensor)example["x"]).add(torch.rand(4));
            return example;
        }

        public override nn.Module CreateModel(Cfg cfg) => tiny.CreateModel(cfg);

        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Cfg cfg, Mode mode) =>
            tiny.ComputeForward(model, minibatch, cfg, mode);
    }

    /// <summary>A collate that pads nothing, keeps the examples as a list, and hands the first row's tensor back as it is.</summary>
    private sealed class ListCollateSpec : CountingSpec
    {
        public override object CollateFn(IReadOnlyList<object> batch, Cfg cfg, Mode mode) => new Dictionary<string, object>
        {
            ["x"] = torch.stack(batch.Select(b => (Tensor)((Dictionary<string, object>)b)["x"]).ToArray()),
            ["first"] = ((Dictionary<string, object>)batch[0])["y"],
        };
    }

    private static Cfg Knobs(double lr, double scale = 1.0) => new([
        new("scale", scale), new("epochs", 1L), new("batch_size", 8L),
        new("optimizer", new Dictionary<string, object?> { ["name"] = "Adam", ["args"] = new Dictionary<string, object?> { ["lr"] = lr } }),
    ]);

    private PreparedExamples Cache(long maxBytes = 1 << 30)
    {
        var cache = new PreparedExamples(enabled: true, maxBytes);
        cache.Notify = notes.Add;
        return cache;
    }

    private static int[][] Minibatches(int rows, int seed)
    {
        var order = Enumerable.Range(0, rows).ToArray();
        new Random(seed).Shuffle(order);
        return order.Chunk(8).ToArray();
    }

    private static void AssertSame(PreparedMinibatch expected, PreparedMinibatch actual)
    {
        Assert.Equal(expected.Ids, actual.Ids);
        var e = (IDictionary<string, object>)expected.Batch.Value;
        var a = (IDictionary<string, object>)actual.Batch.Value;
        Assert.Equal(e.Keys, a.Keys);
        foreach (var key in e.Keys)
        {
            var (x, y) = ((Tensor)e[key], (Tensor)a[key]);
            Assert.Equal(x.dtype, y.dtype);
            Assert.Equal(x.shape, y.shape);
            Assert.True(x.equal(y).all().item<bool>(), $"member {key} differs");
        }
    }

    [Fact]
    public void Cached_minibatches_equal_RowPrep_and_the_default_collate_bit_for_bit_and_each_row_is_prepared_once()
    {
        using var cache = Cache();
        var spec = new CountingSpec();
        var reference = new CountingSpec();
        for (var epoch = 0; epoch < 3; epoch++)
            foreach (var rows in Minibatches(train.RowCount, epoch))
                AssertSame(MinibatchPreparation.Prepare(reference, train, rows, Knobs(0.1), Mode.Train), cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train));

        Assert.Equal(train.RowCount + 1, spec.Calls); // every row once, and the first twice: the check for a random RowPrep
        Assert.Equal(train.RowCount * (4 * 4 + 8), cache.Bytes); // x: 4 floats, y: one int64 per row, contiguous
        Assert.Contains(notes, n => n.StartsWith("train rows cached (for the runs with fail (absent))", StringComparison.Ordinal) && n.Contains("40 rows"));
    }

    [Fact]
    public void Runs_that_differ_only_in_knobs_RowPrep_never_reads_share_the_rows_and_a_knob_it_reads_keeps_them_apart()
    {
        using var cache = Cache();
        var spec = new CountingSpec(readsScale: true);
        var all = Enumerable.Range(0, train.RowCount).ToArray();
        cache.Prepare(spec, train, all, Knobs(lr: 0.1, scale: 2.0), Mode.Train);
        var calls = spec.Calls;

        var sameScale = cache.Prepare(spec, train, all, Knobs(lr: 0.5, scale: 2.0), Mode.Train);
        Assert.Equal(calls, spec.Calls); // lr is not read by RowPrep: the second run prepares nothing

        var otherScale = cache.Prepare(spec, train, all, Knobs(lr: 0.1, scale: 3.0), Mode.Train);
        Assert.Equal(calls + train.RowCount + 1, spec.Calls);
        AssertSame(MinibatchPreparation.Prepare(new CountingSpec(readsScale: true), train, all, Knobs(0.1, 3.0), Mode.Train), otherScale);
        AssertSame(MinibatchPreparation.Prepare(new CountingSpec(readsScale: true), train, all, Knobs(0.9, 2.0), Mode.Train), sameScale);
    }

    [Fact]
    public void Knobs_read_by_InitializeRun_key_the_rows_too()
    {
        using var cache = Cache();
        var reads = cache.ReadsOf(Mode.Train);
        var specs = new SpecInstances(() => new InitializingSpec(), () => "", cache.ReadsOf);
        var a = specs.Get(1, Knobs(0.1, scale: 2.0), Mode.Train);
        var b = specs.Get(2, Knobs(0.1, scale: 3.0), Mode.Train);
        var all = Enumerable.Range(0, train.RowCount).ToArray();

        var first = cache.Prepare(a, train, all, Knobs(0.1, 2.0), Mode.Train);
        var second = cache.Prepare(b, train, all, Knobs(0.1, 3.0), Mode.Train);

        Assert.Contains("scale", reads.Keys);
        Assert.False(((Tensor)((IDictionary<string, object>)first.Batch.Value)["x"]).equal((Tensor)((IDictionary<string, object>)second.Batch.Value)["x"]).all().item<bool>());
    }

    /// <summary>Reads its knob in InitializeRun only, as a spec building a tokenizer from a knob does.</summary>
    private sealed class InitializingSpec : MLSpec
    {
        private readonly TinySpec tiny = new();
        private double scale = 1;

        public override void InitializeRun(string miscPath, Cfg cfg, Mode mode) => scale = cfg.Get("scale", 1.0);

        public override object RowPrep(Row row, Cfg cfg, Mode mode)
        {
            var example = (Dictionary<string, object>)tiny.RowPrep(row, new Cfg([]), mode);
            example["x"] = ((Tensor)example["x"]).mul(scale);
            return example;
        }

        public override nn.Module CreateModel(Cfg cfg) => tiny.CreateModel(cfg);

        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Cfg cfg, Mode mode) => tiny.ComputeForward(model, minibatch, cfg, mode);
    }

    [Fact]
    public void A_random_RowPrep_is_found_out_and_prepared_anew_every_time_as_without_a_cache()
    {
        using var cache = Cache();
        var spec = new CountingSpec(random: true);
        var rows = Enumerable.Range(0, 8).ToArray();
        var first = cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);
        var second = cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);

        Assert.False(((Tensor)((IDictionary<string, object>)first.Batch.Value)["x"]).equal((Tensor)((IDictionary<string, object>)second.Batch.Value)["x"]).all().item<bool>());
        Assert.Equal(0, cache.Bytes);
        Assert.Contains(notes, n => n.Contains("RowPrep gave row id") && n.Contains("different values twice"));
    }

    [Fact]
    public void A_spec_that_opts_out_is_prepared_every_time_and_nothing_is_kept()
    {
        using var cache = Cache();
        var spec = new CountingSpec(cache: false);
        var rows = Enumerable.Range(0, 8).ToArray();
        cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);
        cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);
        Assert.Equal(16, spec.Calls);
        Assert.Equal(0, cache.Bytes);
    }

    [Fact]
    public void Rows_that_would_pass_the_byte_cap_are_not_cached_and_the_note_says_so()
    {
        using var cache = Cache(maxBytes: 100); // 40 rows take 960 bytes
        var spec = new CountingSpec();
        var rows = Enumerable.Range(0, 8).ToArray();
        var reference = MinibatchPreparation.Prepare(new CountingSpec(), train, rows, Knobs(0.1), Mode.Train);
        AssertSame(reference, cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train));
        AssertSame(reference, cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train));

        Assert.Equal(0, cache.Bytes);
        Assert.Single(notes, n => n.Contains("are not cached") && n.Contains("prep-cache-max-bytes")); // said once, not tried again
        Assert.Equal(8 + 1 + 8, spec.Calls);
    }

    [Fact]
    public void A_custom_collate_gets_the_cached_examples_and_disposing_a_minibatch_never_disposes_them()
    {
        using var cache = Cache();
        var spec = new ListCollateSpec();
        var rows = Enumerable.Range(0, 8).ToArray();
        for (var i = 0; i < 3; i++)
        {
            var prepared = cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);
            var batch = (IDictionary<string, object>)prepared.Batch.Value;
            Assert.Equal(train[0].GetInt64("label"), ((Tensor)batch["first"]).item<long>());
            TensorTree.Dispose(prepared.Batch.Value); // as the trainer does after the step
        }
        Assert.Equal(9, spec.Calls);
        Assert.True(cache.Bytes > 0);
    }

    [Fact]
    public void A_cache_that_is_off_prepares_every_time()
    {
        using var cache = new PreparedExamples(enabled: false, 1 << 30);
        var spec = new CountingSpec();
        var rows = Enumerable.Range(0, 8).ToArray();
        cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);
        cache.Prepare(spec, train, rows, Knobs(0.1), Mode.Train);
        Assert.Equal(16, spec.Calls);
    }
}
