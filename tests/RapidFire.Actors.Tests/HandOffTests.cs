using RapidFire.Actors.Training;

namespace RapidFire.Actors.Tests;

/// <summary>The one hand-off of data in flight between two actors: put once, taken once, the rest released and counted.</summary>
public class HandOffTests
{
    private sealed class Buffer
    {
        public bool Released { get; set; }
    }

    [Fact]
    public void An_entry_is_put_once_and_taken_once_and_what_nobody_takes_is_released_and_counted()
    {
        var handOff = new HandOff<int, Buffer>("the buffer of run", b => b.Released = true);
        var (first, second, third) = (new Buffer(), new Buffer(), new Buffer());

        Assert.Equal(1, handOff.Put(1, first));
        Assert.Equal("the buffer of run 1 was handed off twice", Assert.Throws<InvalidOperationException>(() => handOff.Put(1, second)).Message);
        handOff.Put(2, second);
        handOff.Put(3, third);
        Assert.Equal(3, handOff.Count);

        Assert.Same(first, handOff.Take(1));
        Assert.Equal("the buffer of run 1 is not waiting", Assert.Throws<InvalidOperationException>(() => handOff.Take(1)).Message);
        Assert.False(handOff.TryTake(1, out _));
        Assert.False(first.Released); // its taker owns it now

        handOff.Discard(2);
        Assert.True(second.Released);
        handOff.Discard(2); // gone already: nothing happens
        Assert.Equal(1, handOff.Count);

        handOff.Dispose();
        Assert.True(third.Released);
        Assert.Equal(0, handOff.Count);
    }
}
