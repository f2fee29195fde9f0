namespace RapidFire.Spec;

/// <summary>One row of an Example Structure File, as given to <c>MLSpec.RowPrep</c>. (Placeholder: the data-handle work replaces this file.)</summary>
public sealed class Row
{
    /// <summary>The row's ESF id.</summary>
    public long Id { get; }
}
