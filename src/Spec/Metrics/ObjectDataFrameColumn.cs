using Microsoft.Data.Analysis;

namespace RapidFire.Spec.Metrics;

/// <summary>
/// A <see cref="DataFrame"/> column of arbitrary objects. It holds the non-tensor values <c>ComputeMetrics</c>
/// returns: one list per minibatch, which <c>AggregateMetrics</c> post-processes (non-algebraic metrics).
/// </summary>
public sealed class ObjectDataFrameColumn : DataFrameColumn
{
    private readonly List<object?> values;

    /// <summary>Creates a column holding <paramref name="values"/>, one per row.</summary>
    public ObjectDataFrameColumn(string name, IEnumerable<object?> values) : this(name, values.ToList()) { }

    private ObjectDataFrameColumn(string name, List<object?> values) : base(name, values.Count, typeof(object)) =>
        this.values = values;

    /// <summary>The value of row <paramref name="rowIndex"/>.</summary>
    public new object? this[long rowIndex] => values[checked((int)rowIndex)];

    /// <inheritdoc />
    public override long NullCount => values.Count(v => v is null);

    /// <inheritdoc />
    protected override object? GetValue(long rowIndex) => values[checked((int)rowIndex)];

    /// <inheritdoc />
    protected override IReadOnlyList<object?> GetValues(long startIndex, int length) =>
        values.GetRange(checked((int)startIndex), length);

    /// <inheritdoc />
    protected override void SetValue(long rowIndex, object? value) => values[checked((int)rowIndex)] = value;

    /// <inheritdoc />
    protected override System.Collections.IEnumerator GetEnumeratorCore() => values.GetEnumerator();

    /// <inheritdoc />
    protected override DataFrameColumn CloneImplementation(DataFrameColumn? mapIndices, bool invertMapIndices, long numberOfNullsToAppend)
    {
        IEnumerable<object?> rows = values;
        if (mapIndices is not null)
        {
            var indices = Enumerable.Range(0, (int)mapIndices.Length).Select(i => Convert.ToInt32(mapIndices[i]));
            rows = (invertMapIndices ? indices.Reverse() : indices).Select(i => values[i]);
        }
        return new ObjectDataFrameColumn(Name, rows.Concat(Enumerable.Repeat<object?>(null, (int)numberOfNullsToAppend)).ToList());
    }

    /// <inheritdoc />
    protected override DataFrameColumn CloneImplementation(long numberOfNullsToAppend) =>
        CloneImplementation(null, false, numberOfNullsToAppend);

    /// <inheritdoc />
    public override Dictionary<long, ICollection<long>> GetGroupedOccurrences(DataFrameColumn other, out HashSet<long> otherColumnNullIndices) =>
        throw new NotSupportedException($"column '{Name}' holds objects and cannot be joined on");

    /// <inheritdoc />
    protected override DataFrameColumn FillNullsImplementation(object value, bool inPlace)
    {
        var target = inPlace ? this : (ObjectDataFrameColumn)Clone();
        for (var i = 0; i < target.values.Count; i++) target.values[i] ??= value;
        return target;
    }

    /// <inheritdoc />
    protected override DataFrameColumn DropNullsImplementation() =>
        new ObjectDataFrameColumn(Name, values.Where(v => v is not null).ToList());

    /// <inheritdoc />
    protected override PrimitiveDataFrameColumn<long> GetSortIndices(bool ascending, bool putNullValuesLast) =>
        throw new NotSupportedException($"column '{Name}' holds objects and cannot be sorted");
}
