using RapidFire.Spec.Data;

namespace RapidFire.Spec.Tests.Data;

public class SamplingTests
{
    private static string Csv(int rows) => "id,label\n" + string.Concat(Enumerable.Range(0, rows).Select(i => $"{1000 + i},{i % 10}\n"));

    [Fact]
    public void A_fraction_keeps_a_rounded_share_of_the_rows_in_file_order()
    {
        using var folder = new TempFolder();
        var table = SampleEsf.OpenCsv(folder, Csv(200), b => b.Fraction(0.25).Seed(7));
        Assert.Equal(50, table.RowCount);
        Assert.Equal(200, table.FileRowCount);
        Assert.Equal(table.Ids.Order(), table.Ids);
        Assert.Equal(table.Ids.Distinct().Count(), table.RowCount);
        Assert.All(table, row => Assert.Equal(row.Id - 1000 + 1, row.FileRow));
        Assert.All(table, row => Assert.Equal((row.Id - 1000) % 10, row.GetInt64("label")));
    }

    [Fact]
    public void The_same_seed_picks_the_same_rows_and_another_seed_other_rows()
    {
        using var folder = new TempFolder();
        var first = SampleEsf.OpenCsv(folder, Csv(100), b => b.Fraction(0.3).Seed(1)).Ids;
        var again = SampleEsf.OpenCsv(folder, Csv(100), b => b.Fraction(0.3).Seed(1)).Ids;
        var other = SampleEsf.OpenCsv(folder, Csv(100), b => b.Fraction(0.3).Seed(2)).Ids;
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void The_sample_of_a_seed_is_fixed_across_platforms_and_versions()
    {
        // SplitMix64 is written out in RowSampler: these positions must never change, or resumed experiments
        // would train on other rows.
        Assert.Equal([1, 3, 4, 6, 7], RowSampler.Sample(10, 0.5, 42));
    }

    [Theory]
    [InlineData(10, 0.05, 1)]
    [InlineData(10, 0.15, 2)]
    [InlineData(10, 0.25, 3)]
    [InlineData(3, 1.0, 3)]
    [InlineData(0, 0.5, 0)]
    public void The_sample_size_rounds_half_up_and_keeps_at_least_one_row(int rows, double fraction, int expected) =>
        Assert.Equal(expected, RowSampler.SampleSize(rows, fraction));

    [Fact]
    public void A_sample_across_record_batches_reads_the_right_rows()
    {
        using var folder = new TempFolder();
        folder.Touch("images/a.png", "images/b.png", "images/c.png");
        folder.WriteArrow("t.arrows", fileFormat: false, SampleEsf.Batch(0, 1), SampleEsf.Batch(1, 2), SampleEsf.Batch(2, 3));
        var table = SampleEsf.Open(folder, "t.arrows", b => b.Fraction(0.67).Seed(3));
        Assert.Equal(2, table.RowCount);
        Assert.All(table, row => Assert.Equal(row.Id switch { 1 => 3L, 2 => 7L, _ => 0L }, row.GetInt64("label")));
        Assert.All(table, row => Assert.Equal(row.Id, row.FileRow));
    }

    [Fact]
    public void Rows_are_found_by_id_and_sampled_out_ids_are_absent()
    {
        using var folder = new TempFolder();
        var table = SampleEsf.OpenCsv(folder, Csv(20), b => b.Fraction(0.5));
        var kept = table.Ids[3];
        Assert.Equal(3, table.IndexOf(kept));
        Assert.Equal(kept, table.GetRowById(kept).Id);
        var dropped = Enumerable.Range(1000, 20).Select(i => (long)i).First(id => !table.ContainsId(id));
        Assert.False(table.TryGetRowById(dropped, out _));
        var error = Assert.Throws<DataException>(() => table.GetRowById(dropped));
        Assert.Contains($"no row of the train partition has id {dropped}", error.Message);
    }
}
