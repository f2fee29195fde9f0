using System.Collections;
using System.Runtime.CompilerServices;
using RapidFire.Actors.Training;
using RapidFire.Spec;
using RapidFire.Spec.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Actors.Data;

/// <summary>
/// The node's cache of what <c>RowPrep</c> returned, so that every row of a partition is prepared once per fit, not
/// once per run and epoch. It is the only owner of the cached tensors; the loaders ask it for minibatches
/// (<see cref="Prepare"/>) and never hold its tensors.
/// </summary>
/// <remarks>
/// <para><b>Sharing.</b> Entries are keyed by the partition and by the values of the knobs that <c>RowPrep</c> and
/// <c>InitializeRun</c> have read so far in that mode (recorded through <see cref="Config.Tracked"/>): runs that differ
/// only in knobs the preprocessing never reads (the learning rate, the model) share one entry. When a knob is read for
/// the first time the keys change and the entries built under the old keys are dropped, so an entry is never shared by
/// runs whose preprocessing could differ.</para>
/// <para><b>Layout.</b> With the default collate, every member of an example is stored in one contiguous tensor of
/// <c>[rows, ...shape]</c> and a minibatch is an <c>index_select</c> per member: the same values as
/// <see cref="Collate.Default"/> stacking them. With a custom <c>CollateFn</c> the examples are kept one by one and
/// given to it as they are (it must not change them in place).</para>
/// <para><b>Not cached</b>: specs whose <see cref="MLSpec.CacheRowPrep"/> is false and modes whose <c>RowPrep</c> gives
/// a row different values twice (random augmentation), which behave exactly as without a cache; entries that would
/// pass the byte cap, and examples whose members change shape between rows.</para>
/// </remarks>
public sealed class PreparedExamples : IDisposable
{
    private readonly object gate = new();
    private readonly Dictionary<(Mode Mode, string Knobs), Entry> entries = [];
    private readonly Dictionary<Mode, KnobReads> reads = [];
    private readonly HashSet<Mode> random = [];
    private readonly List<Entry> retired = [];
    private long bytes;

    /// <summary>A cache that holds at most <paramref name="maxBytes"/> of tensors; none at all when not <paramref name="enabled"/>.</summary>
    public PreparedExamples(bool enabled, long maxBytes)
    {
        Enabled = enabled;
        MaxBytes = maxBytes;
    }

    /// <summary>Whether examples are cached at all (the <c>prep-cache</c> setting).</summary>
    public bool Enabled { get; }

    /// <summary>The most bytes of tensors the cache holds.</summary>
    public long MaxBytes { get; }

    /// <summary>The bytes of tensors the cache holds now.</summary>
    public long Bytes
    {
        get
        {
            lock (gate) return bytes;
        }
    }

    /// <summary>Where the cache says what it cached, and what it could not (a line each).</summary>
    public Action<string>? Notify { get; set; }

    /// <summary>The knobs that the preprocessing of <paramref name="mode"/> read, in every run of this node.</summary>
    public KnobReads ReadsOf(Mode mode)
    {
        lock (gate)
        {
            if (!reads.TryGetValue(mode, out var r)) reads[mode] = r = new KnobReads();
            return r;
        }
    }

    /// <summary>
    /// The minibatch of <paramref name="rows"/> (positions in <paramref name="table"/>) for a run with
    /// <paramref name="cfg"/>: gathered from the cache where its rows are there, else prepared by
    /// <see cref="MinibatchPreparation.Prepare"/> (and cached). Bit-identical either way for a deterministic <c>RowPrep</c>.
    /// </summary>
    public PreparedMinibatch Prepare(MLSpec spec, EsfTable table, IReadOnlyList<int> rows, Config cfg, Mode mode)
    {
        var knobs = ReadsOf(mode);
        var tracked = cfg.Tracked(knobs);
        if (!Enabled || !spec.CacheRowPrep) return MinibatchPreparation.Prepare(spec, table, rows, tracked, mode);
        var custom = HasCustomCollate(spec);
        var entry = EntryFor(mode, knobs, cfg, table.RowCount, custom);
        if (entry is null) return MinibatchPreparation.Prepare(spec, table, rows, tracked, mode);

        var ids = new long[rows.Count];
        for (var i = 0; i < rows.Count; i++) ids[i] = table.Ids[rows[i]];
        List<int> missing;
        lock (gate) missing = entry.Missing(rows);
        if (missing.Count > 0)
        {
            using var scope = torch.NewDisposeScope();
            var items = new object[missing.Count];
            for (var i = 0; i < missing.Count; i++) items[i] = MinibatchPreparation.RowPrep(spec, table[missing[i]], tracked, mode);
            var probed = entry.Probed || Probe(spec, table, missing[0], items[0], tracked, mode);
            // A knob read for the first time by these calls changed the key: the examples belong under the new one.
            if (probed && entry.Version != knobs.Version) entry = EntryFor(mode, knobs, cfg, table.RowCount, custom);
            if (!probed || entry is null || !Add(entry, missing, items, scope))
                return missing.SequenceEqual(rows) // not cached after all: the examples just prepared make the minibatch
                    ? MinibatchPreparation.Collated(spec, items, ids, tracked, mode, scope)
                    : MinibatchPreparation.Prepare(spec, table, rows, tracked, mode);
        }
        IReadOnlyList<object> cached;
        lock (gate)
        {
            // Some rows are not there: the entry was retired, or rekeyed, since they were looked up.
            if (!entry.Usable || !entry.HasAll(rows)) return MinibatchPreparation.Prepare(spec, table, rows, tracked, mode);
            if (!custom) return new PreparedMinibatch(new Minibatch(entry.Gather(rows), rows.Count), ids);
            cached = entry.Items(rows);
        }
        var collated = MinibatchPreparation.Collate(spec, cached, tracked, mode);
        return new PreparedMinibatch(new Minibatch(Owned(collated, cached), rows.Count), ids);
    }

    private Entry? EntryFor(Mode mode, KnobReads knobs, Config cfg, int rowCount, bool custom)
    {
        lock (gate)
        {
            if (random.Contains(mode)) return null;
            var key = (mode, knobs.Signature(cfg));
            if (entries.TryGetValue(key, out var entry)) return entry.Usable ? entry : null;
            // The knobs read changed since older entries were made: their keys no longer say which runs may share them.
            foreach (var stale in entries.Values.Where(e => e.Mode == mode && e.Version != knobs.Version).ToList()) Retire(stale, keepKey: false);
            entry = new Entry(mode, key.Item2, knobs.Version, rowCount, custom);
            entries[key] = entry;
            return entry;
        }
    }

    /// <summary>
    /// Calls <c>RowPrep</c> on the entry's first row a second time: a preprocessing that gives the same row different
    /// values (random augmentation) is never cached in this mode, and behaves as without a cache.
    /// </summary>
    private bool Probe(MLSpec spec, EsfTable table, int row, object first, Config tracked, Mode mode)
    {
        var again = MinibatchPreparation.RowPrep(spec, table[row], tracked, mode);
        lock (gate)
        {
            if (SameValues(first, again)) return true; // the entry is marked probed when the examples are added
            if (!random.Add(mode)) return false;
            foreach (var stale in entries.Values.Where(e => e.Mode == mode).ToList()) Retire(stale, keepKey: false);
        }
        Notify?.Invoke($"{mode.ToName()} rows are not cached: RowPrep gave row id {table.Ids[row]} different values twice " +
                       "(random augmentation?); they are prepared anew every epoch (override CacheRowPrep => false to skip this check)");
        return false;
    }

    private bool Add(Entry entry, IReadOnlyList<int> rows, object[] items, DisposeScope scope)
    {
        string? note = null;
        bool added;
        lock (gate)
        {
            if (!entry.Usable || entries.GetValueOrDefault((entry.Mode, entry.Knobs)) != entry || entry.Version != ReadsOf(entry.Mode).Version)
                return false;
            var before = entry.Bytes;
            entry.Probed = true; // the caller checked these examples
            added = entry.TryAdd(rows, items, MaxBytes - bytes + before, scope, out var problem);
            bytes += entry.Bytes - before;
            if (!added)
            {
                note = $"{entry.Mode.ToName()} rows ({Describe(entry)}) are not cached: {problem}";
                Retire(entry, keepKey: true); // its key stays, not cached: the rows are not tried again
            }
            else if (entry.Complete && !entry.Announced)
            {
                entry.Announced = true;
                note = $"{entry.Mode.ToName()} rows cached ({Describe(entry)}): {entry.RowCount} rows, {Megabytes(entry.Bytes)} " +
                       (entry.Custom ? "as RowPrep returned them (custom CollateFn)" : "stored contiguously (a minibatch is one index_select)") +
                       $"; the cache holds {Megabytes(bytes)} of {Megabytes(MaxBytes)}";
            }
        }
        if (note is not null) Notify?.Invoke(note);
        return added;
    }

    /// <summary>
    /// Takes an entry out of use; with <paramref name="keepKey"/> its key stays, marked not cached. Examples kept one by
    /// one live until the cache is disposed, since a loader may still be collating them (a custom <c>CollateFn</c> runs
    /// outside the lock); contiguous ones are only read under the lock and go at once. Entries are retired only when a
    /// knob is first read, early in a fit, or for good (over the cap, random, ragged), so little is held this way.
    /// </summary>
    private void Retire(Entry entry, bool keepKey)
    {
        bytes -= entry.Bytes;
        entry.Usable = false;
        if (!keepKey) entries.Remove((entry.Mode, entry.Knobs));
        if (entry.Custom) retired.Add(entry);
        else entry.Dispose();
    }

    private static string Describe(Entry entry) => entry.Knobs.AsSpan(entry.Knobs.IndexOf(':') + 1) is { Length: > 0 } knobs
        ? $"for the runs with {knobs}"
        : "shared by every run: RowPrep reads no knob";

    private static string Megabytes(long n) => $"{n / 1048576.0:0.0} MB";

    /// <summary>Whether the spec overrides <see cref="MLSpec.CollateFn"/>.</summary>
    private static bool HasCustomCollate(MLSpec spec) => CustomCollate.GetOrAdd(spec.GetType(), type =>
        type.GetMethod(nameof(MLSpec.CollateFn), [typeof(IReadOnlyList<object>), typeof(Config), typeof(Mode)])?.DeclaringType != typeof(MLSpec));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Type, bool> CustomCollate = new();

    /// <summary>
    /// The collated value with every cached tensor it returned as it is replaced by an alias: the trainer disposes the
    /// minibatch's tensors, never the cache's.
    /// </summary>
    private static object Owned(object collated, IReadOnlyList<object> cached)
    {
        var handles = TensorTree.Tensors(cached).Select(t => t.Handle).ToHashSet();
        return TensorTree.Tensors(collated).Any(t => handles.Contains(t.Handle))
            ? TensorTree.Map(collated, t => handles.Contains(t.Handle) ? t.alias() : t)
            : collated;
    }

    private static bool SameValues(object? a, object? b) => (a, b) switch
    {
        // NaN counts as equal to NaN: a deterministic RowPrep may return it.
        (Tensor x, Tensor y) => x.dtype == y.dtype && x.shape.SequenceEqual(y.shape) && x.eq(y).logical_or(x.ne(x).logical_and(y.ne(y))).all().item<bool>(),
        (IDictionary x, IDictionary y) => x.Count == y.Count && x.Keys.Cast<object>().All(k => y.Contains(k) && SameValues(x[k], y[k])),
        (ITuple x, ITuple y) => x.Length == y.Length && Enumerable.Range(0, x.Length).All(i => SameValues(x[i], y[i])),
        (IList x, IList y) => x.Count == y.Count && Enumerable.Range(0, x.Count).All(i => SameValues(x[i], y[i])),
        _ => Equals(a, b),
    };

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            foreach (var entry in entries.Values.Concat(retired)) entry.Dispose();
            entries.Clear();
            retired.Clear();
            bytes = 0;
        }
    }

    /// <summary>The cached examples of one partition for the runs that share a key; every call holds the cache's lock.</summary>
    private sealed class Entry(Mode mode, string knobs, int version, int rowCount, bool custom) : IDisposable
    {
        private readonly bool[] present = new bool[rowCount];
        private readonly object?[]? items = custom ? new object?[rowCount] : null;
        private ExampleLayout? layout;
        private Tensor[]? columns;
        private int count;

        public Mode Mode { get; } = mode;
        public string Knobs { get; } = knobs;
        public int Version { get; } = version;
        public int RowCount { get; } = rowCount;
        public bool Custom { get; } = custom;
        public long Bytes { get; private set; }
        public bool Usable { get; set; } = true;
        public bool Probed { get; set; }
        public bool Announced { get; set; }
        public bool Complete => count == RowCount;

        public List<int> Missing(IReadOnlyList<int> rows)
        {
            var missing = new List<int>();
            foreach (var row in rows)
                if (!present[row] && !missing.Contains(row)) missing.Add(row);
            return missing;
        }

        public bool HasAll(IReadOnlyList<int> rows)
        {
            foreach (var row in rows)
                if (!present[row]) return false;
            return true;
        }

        /// <summary>Stores the rows' examples (within <paramref name="room"/> bytes); false, with why, when the entry cannot hold them.</summary>
        public bool TryAdd(IReadOnlyList<int> rows, object[] examples, long room, DisposeScope scope, out string? problem)
        {
            problem = null;
            if (items is not null) return AddItems(rows, examples, room, scope, out problem);
            if (layout is null)
            {
                layout = ExampleLayout.Of(examples[0]);
                if (layout is null)
                {
                    problem = "RowPrep returned a value the default collate cannot stack";
                    return false;
                }
                var size = (long)RowCount * layout.RowBytes;
                if (size > room)
                {
                    problem = $"they would take {Megabytes(size)}, more than the cache has left (prep-cache-max-bytes)";
                    return false;
                }
                columns = layout.Allocate(RowCount);
                foreach (var column in columns) scope.Detach(column); // they outlive the scope the rows were prepared in
                Bytes = size;
            }
            var fresh = Enumerable.Range(0, rows.Count).Where(i => !present[rows[i]]).ToList();
            if (fresh.Count == 0) return true;
            if (!layout.Write(fresh.Select(i => examples[i]).ToList(), fresh.Select(i => rows[i]).ToList(), columns!, out problem)) return false;
            foreach (var i in fresh) present[rows[i]] = true;
            count += fresh.Count;
            return true;
        }

        private bool AddItems(IReadOnlyList<int> rows, object[] examples, long room, DisposeScope scope, out string? problem)
        {
            problem = null;
            for (var i = 0; i < rows.Count; i++)
            {
                if (present[rows[i]]) continue;
                var tensors = TensorTree.Tensors(examples[i]).ToList();
                var size = tensors.Sum(t => t.NumberOfElements * t.ElementSize) + 64;
                if (Bytes + size > room)
                {
                    problem = $"they would take more than the cache has left (prep-cache-max-bytes); {count} of {RowCount} rows fitted";
                    return false;
                }
                foreach (var t in tensors)
                    if (scope.Contains(t)) scope.Detach(t);
                items![rows[i]] = examples[i];
                present[rows[i]] = true;
                Bytes += size;
                count++;
            }
            return true;
        }

        /// <summary>The minibatch of <paramref name="rows"/>, as the default collate would stack it.</summary>
        public object Gather(IReadOnlyList<int> rows)
        {
            var positions = new long[rows.Count];
            for (var i = 0; i < rows.Count; i++) positions[i] = rows[i];
            using var index = torch.tensor(positions);
            return layout!.Build(columns!.Select(c => c.index_select(0, index)).ToArray());
        }

        public IReadOnlyList<object> Items(IReadOnlyList<int> rows) => rows.Select(r => items![r]!).ToList();

        public void Dispose()
        {
            Usable = false;
            if (columns is not null)
                foreach (var c in columns) c.Dispose();
            columns = null;
            if (items is not null)
                for (var i = 0; i < items.Length; i++)
                {
                    TensorTree.Dispose(items[i]);
                    items[i] = null;
                }
            Bytes = 0;
        }
    }
}
