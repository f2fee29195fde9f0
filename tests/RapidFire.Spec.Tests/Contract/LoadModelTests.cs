using TorchSharp;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Contract;

public sealed class LoadModelTests : IDisposable
{
    private readonly string models = Directory.CreateTempSubdirectory("rf-models-").FullName;

    public void Dispose() => Directory.Delete(models, recursive: true);

    private sealed class Probe : MLSpec
    {
        public override object RowPrep(Row row, Config cfg, Mode mode) => throw new InvalidOperationException();
        public override nn.Module CreateModel(Config cfg) => throw new InvalidOperationException();
        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode) =>
            throw new InvalidOperationException();
    }

    [Fact]
    public void A_TorchSharp_checkpoint_loads_as_a_state_dict_that_restores_the_weights()
    {
        torch.manual_seed(1);
        var trained = nn.Linear(4, 2);
        Directory.CreateDirectory(Path.Combine(models, "mnist"));
        trained.save(Path.Combine(models, "mnist", "linear.dat"));

        var spec = new Probe { Context = new SpecContext(models) };
        var state = spec.LoadModel("mnist/linear.dat");
        Assert.Equal(["bias", "weight"], state.Keys.Order());

        var fresh = nn.Linear(4, 2);
        fresh.load_state_dict(state.ToDictionary());
        Assert.True(fresh.weight!.allclose(trained.weight!, rtol: 0, atol: 0));
    }

    [Fact]
    public void A_missing_tag_names_the_tag_and_the_locator()
    {
        var spec = new Probe { Context = new SpecContext(models) };
        var e = Assert.Throws<SpecException>(() => spec.LoadModel("nope.dat"));
        Assert.Equal("LoadModel", e.Method);
        Assert.Contains($"model tag 'nope.dat' not found in the models locator {models}", e.Message);
    }

    [Fact]
    public void A_tag_that_escapes_the_locator_or_no_locator_at_all_is_refused()
    {
        Assert.Contains("escapes the models locator",
            Assert.Throws<SpecException>(() => new Probe { Context = new SpecContext(models) }.LoadModel("../x.dat")).Message);
        Assert.Contains("the data handle has no 'models' locator",
            Assert.Throws<SpecException>(() => new Probe().LoadModel("x.dat")).Message);
    }
}
