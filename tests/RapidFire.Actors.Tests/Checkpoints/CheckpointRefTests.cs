using RapidFire.Actors.Checkpoints;

namespace RapidFire.Actors.Tests.Checkpoints;

public class CheckpointRefTests
{
    [Fact]
    public void A_key_is_named_by_run_folder_and_zero_padded_0_based_epoch_and_chunk()
    {
        Assert.Equal("run-3/e0001-c0000.ckpt", new CheckpointRef(3, 1, 0).RelativePath);
        Assert.Equal("run-12/e12345-c0007.ckpt", new CheckpointRef(12, 12345, 7).RelativePath);
    }

    [Theory]
    [InlineData(3, 1, 0)]
    [InlineData(0, 0, 0)]
    [InlineData(12, 12345, 7)]
    public void A_key_parses_back_from_its_name(int run, int epoch, int chunk)
    {
        var key = new CheckpointRef(run, epoch, chunk);
        Assert.Equal(key, CheckpointRef.Parse(key.RelativePath));
        Assert.Equal(key, CheckpointRef.Parse(key.RelativePath.Replace('/', '\\')));
    }

    [Theory]
    [InlineData("run-3/e0001-c0000.ckpt.tmp")]
    [InlineData("run-3/.e0001-c0000.ckpt.0123456789abcdef0123456789abcdef.tmp")]
    [InlineData("run-3/e01-c0.ckpt")]
    [InlineData("run-03/e0001-c0000.ckpt")]
    [InlineData("run-3/e0001-c0000.bin")]
    [InlineData("e0001-c0000.ckpt")]
    [InlineData("run-3/sub/e0001-c0000.ckpt")]
    [InlineData("run-3/e99999999999-c0000.ckpt")]
    [InlineData("")]
    public void A_name_that_is_not_exactly_a_checkpoint_name_is_no_key(string name)
    {
        Assert.False(CheckpointRef.TryParse(name, out _));
        var error = Assert.Throws<FormatException>(() => CheckpointRef.Parse(name));
        Assert.Contains($"'{name}'", error.Message);
    }

    [Fact]
    public void Keys_order_by_run_then_epoch_then_chunk()
    {
        CheckpointRef[] keys = [new(2, 0, 0), new(1, 1, 0), new(1, 0, 10), new(1, 0, 2)];
        Assert.Equal([new(1, 0, 2), new(1, 0, 10), new(1, 1, 0), new(2, 0, 0)], keys.Order());
    }

    [Fact]
    public void A_negative_number_is_refused_naming_the_field()
    {
        Assert.Equal("Epoch", Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointRef(1, -1, 0)).ParamName);
        Assert.Equal("Chunk", Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointRef(1, 0, -1)).ParamName);
        Assert.Equal("RunId", Assert.Throws<ArgumentOutOfRangeException>(() => new CheckpointRef(-1, 0, 0)).ParamName);
    }
}
