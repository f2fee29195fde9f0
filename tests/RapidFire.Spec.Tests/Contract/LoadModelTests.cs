using System.Buffers.Binary;
using System.Collections;
using System.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace RapidFire.Spec.Tests.Contract;

public sealed class LoadModelTests
{
    /// <summary>The weights of the PyTorch fixtures (Fixtures/models/make_torch_fixtures.py): fc is nn.Linear(3, 2).</summary>
    private static readonly float[] FixtureWeight = [0.5f, -1f, 2f, 0.25f, 3f, -0.125f];
    private static readonly float[] FixtureBias = [1f, -2f];

    private static byte[] Fixture(string name) =>
        File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "models", name));

    private sealed class Probe : MLSpec
    {
        public override object RowPrep(Row row, Config cfg, Mode mode) => throw new InvalidOperationException();
        public override nn.Module CreateModel(Config cfg) => throw new InvalidOperationException();
        public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode) =>
            throw new InvalidOperationException();
    }

    private sealed class Net : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> fc;

        public Net(int inputs = 3, int outputs = 2) : base(nameof(Net))
        {
            fc = nn.Linear(inputs, outputs);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => fc.forward(input);
    }

    private static Probe SpecOver(ModelsStore store) => new() { Context = store.Context };

    private static void SaveDat(nn.Module module, Stream stream)
    {
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        module.save(writer);
    }

    private static float[] Values(Tensor t) => t.contiguous().data<float>().ToArray();

    private static void AssertSameState(Dictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, tensor) in expected)
        {
            Assert.Equal(tensor.dtype, actual[name].dtype);
            Assert.True(tensor.eq(actual[name]).all().item<bool>(), $"{name} differs");
        }
    }

    /// <summary>A safetensors file written by hand: 8-byte little-endian header length, JSON header, raw data.</summary>
    private static byte[] Safetensors(params (string Name, string DType, long[] Shape, byte[] Data)[] tensors)
    {
        var header = new StringBuilder("{\"__metadata__\":{\"format\":\"pt\"}");
        var data = new MemoryStream();
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            header.Append($",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{data.Length},{data.Length + bytes.Length}]}}");
            data.Write(bytes);
        }
        header.Append('}');
        while (header.Length % 8 != 0) header.Append(' '); // the format pads the header with spaces to align the data
        var file = new MemoryStream();
        var length = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        file.Write(length);
        file.Write(Encoding.UTF8.GetBytes(header.ToString()));
        file.Write(data.ToArray());
        return file.ToArray();
    }

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    [Theory]
    [MemberData(nameof(ModelsStore.Kinds), MemberType = typeof(ModelsStore))]
    public void A_TorchSharp_checkpoint_loads_as_a_state_dict_that_restores_the_weights(string kind)
    {
        using var store = ModelsStore.Create(kind);
        torch.manual_seed(1);
        var trained = nn.Linear(4, 2);
        store.Put("mnist/linear.dat", s => SaveDat(trained, s));

        var state = SpecOver(store).LoadModel("mnist/linear.dat");
        Assert.Equal(["bias", "weight"], state.Keys.Order());

        var fresh = nn.Linear(4, 2);
        fresh.load_state_dict(state.ToDictionary());
        Assert.True(fresh.weight!.allclose(trained.weight!, rtol: 0, atol: 0));
    }

    [Theory]
    [MemberData(nameof(ModelsStore.Kinds), MemberType = typeof(ModelsStore))]
    public void A_safetensors_file_loads_with_its_dtypes_and_shapes(string kind)
    {
        using var store = ModelsStore.Create(kind);
        var steps = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(steps, 7);
        store.Put("linear.safetensors", Safetensors(
            ("fc.weight", "F32", [2, 3], Floats(FixtureWeight)),
            ("fc.bias", "F32", [2], Floats(FixtureBias)),
            ("steps", "I64", [], steps)));

        var state = SpecOver(store).LoadModel("linear.safetensors");

        Assert.Equal(["fc.bias", "fc.weight", "steps"], state.Keys.Order());
        Assert.Equal([2L, 3L], state["fc.weight"].shape);
        Assert.Equal(FixtureWeight, Values(state["fc.weight"]));
        Assert.Equal(FixtureBias, Values(state["fc.bias"]));
        Assert.Equal(ScalarType.Int64, state["steps"].dtype);
        Assert.Empty(state["steps"].shape);
        Assert.Equal(7L, state["steps"].item<long>());
    }

    [Theory]
    [MemberData(nameof(ModelsStore.Kinds), MemberType = typeof(ModelsStore))]
    public void A_PyTorch_state_dict_laid_out_as_torch_save_writes_it_loads(string kind)
    {
        using var store = ModelsStore.Create(kind);
        store.Put("linear.pt", Fixture("linear.pt"));

        var state = SpecOver(store).LoadModel("linear.pt");

        Assert.Equal(["fc.bias", "fc.weight", "steps"], state.Keys.Order());
        Assert.Equal([2L, 3L], state["fc.weight"].shape);
        Assert.Equal(FixtureWeight, Values(state["fc.weight"]));
        Assert.Equal(FixtureBias, Values(state["fc.bias"]));
        Assert.Equal(7L, state["steps"].item<long>());
    }

    [Fact]
    public void A_PyTorch_tutorial_checkpoint_gives_the_state_dict_it_holds_under_model_state_dict()
    {
        using var store = ModelsStore.Create(ModelsStore.Local);
        store.Put("linear-checkpoint.pth", Fixture("linear-checkpoint.pth"));

        var state = SpecOver(store).LoadModel("linear-checkpoint.pth");

        Assert.Equal(["fc.bias", "fc.weight", "steps"], state.Keys.Order());
        Assert.Equal(FixtureWeight, Values(state["fc.weight"]));
    }

    [Theory]
    [InlineData("net.pt")]
    [InlineData("net.pth")]
    [InlineData("pytorch_model.bin")]
    [InlineData("model.safetensors")]
    public void A_module_saved_by_PyBridge_for_PyTorch_loads_back_into_a_fresh_module(string tag)
    {
        using var store = ModelsStore.Create(ModelsStore.FakeS3);
        torch.manual_seed(3);
        var trained = nn.Sequential(("fc", nn.Linear(4, 3)), ("bn", nn.BatchNorm1d(3)));
        store.Put(tag, s =>
        {
            if (tag.EndsWith(".safetensors", StringComparison.Ordinal)) trained.save_safetensors(s, leaveOpen: true);
            else trained.save_py(s, leaveOpen: true);
        });

        var fresh = SpecOver(store).LoadModel(tag, nn.Sequential(("fc", nn.Linear(4, 3)), ("bn", nn.BatchNorm1d(3))));

        AssertSameState(trained.state_dict(), fresh.state_dict());
    }

    [Fact]
    public void LoadModel_into_a_module_copies_the_weights_and_returns_the_module()
    {
        using var store = ModelsStore.Create(ModelsStore.Local);
        store.Put("net.safetensors", Safetensors(("fc.weight", "F32", [2, 3], Floats(FixtureWeight)), ("fc.bias", "F32", [2], Floats(FixtureBias))));
        var net = new Net();

        var loaded = SpecOver(store).LoadModel("net.safetensors", net);

        Assert.Same(net, loaded);
        Assert.Equal(FixtureWeight, Values(net.state_dict()["fc.weight"]));
        Assert.Equal([2.5f, -1.8125f], Values(net.forward(torch.tensor(new[] { 1f, 0f, 0.5f }).unsqueeze(0)).squeeze(0)));
    }

    [Fact]
    public void LoadModel_into_a_module_that_does_not_fit_lists_missing_and_unexpected_keys_and_shape_mismatches()
    {
        using var store = ModelsStore.Create(ModelsStore.Local);
        store.Put("linear.pt", Fixture("linear.pt"));

        var wrongShape = Assert.Throws<SpecException>(() => SpecOver(store).LoadModel("linear.pt", new Net(inputs: 4)));
        Assert.Equal("LoadModel", wrongShape.Method);
        Assert.Equal(
            "MLSpec.LoadModel: model tag 'linear.pt' does not fit the model Net: unexpected keys: steps; " +
            "shape mismatches: fc.weight is [2, 3] in the file, [2, 4] in the model",
            wrongShape.Message);

        var other = Assert.Throws<SpecException>(() => SpecOver(store).LoadModel("linear.pt", nn.Sequential(("head", nn.Linear(3, 2)))));
        Assert.Contains("missing keys: head.bias, head.weight; unexpected keys: fc.bias, fc.weight, steps", other.Message);
    }

    [Theory]
    [MemberData(nameof(ModelsStore.Kinds), MemberType = typeof(ModelsStore))]
    public void A_missing_tag_names_the_tag_and_the_locator(string kind)
    {
        using var store = ModelsStore.Create(kind);
        var e = Assert.Throws<SpecException>(() => SpecOver(store).LoadModel("mnist-mlp.dat"));
        Assert.Equal("LoadModel", e.Method);
        Assert.Equal($"MLSpec.LoadModel: model tag 'mnist-mlp.dat' not found in the models locator {store.LocatorText}", e.Message);
        if (kind == ModelsStore.FakeS3) Assert.Contains("in the models locator s3://bucket/models/", e.Message);
    }

    [Theory]
    [MemberData(nameof(ModelsStore.Kinds), MemberType = typeof(ModelsStore))]
    public void A_tag_that_escapes_the_locator_or_is_absolute_is_refused(string kind)
    {
        using var store = ModelsStore.Create(kind);
        store.Put("a/x.dat", [0]);
        var spec = SpecOver(store);
        Assert.Equal($"MLSpec.LoadModel: model tag 'a/../../x.dat' escapes the models locator {store.LocatorText}",
            Assert.Throws<SpecException>(() => spec.LoadModel("a/../../x.dat")).Message);
        Assert.Contains("is an absolute path or URL", Assert.Throws<SpecException>(() => spec.LoadModel("/etc/x.dat")).Message);
        Assert.Contains("is an absolute path or URL", Assert.Throws<SpecException>(() => spec.LoadModel("s3://other/x.dat")).Message);
        Assert.Contains("names the models locator", Assert.Throws<SpecException>(() => spec.LoadModel("a/..")).Message);
    }

    [Fact]
    public void Without_a_models_locator_LoadModel_says_so()
    {
        Assert.Contains("model tag 'x.dat': the data handle has no 'models' locator",
            Assert.Throws<SpecException>(() => new Probe().LoadModel("x.dat")).Message);
    }

    [Fact]
    public void An_unknown_extension_lists_the_supported_ones()
    {
        using var store = ModelsStore.Create(ModelsStore.Local);
        store.Put("model.onnx", [1, 2, 3]);
        var e = Assert.Throws<SpecException>(() => SpecOver(store).LoadModel("model.onnx"));
        Assert.Equal(
            "MLSpec.LoadModel: model tag 'model.onnx': cannot read '.onnx' files; the supported extensions are " +
            ".ckpt (a RapidFire checkpoint), .dat (TorchSharp's Module.save), .pt (PyTorch's torch.save of a state dict), " +
            ".pth (PyTorch's torch.save of a state dict), .bin (PyTorch's torch.save of a state dict), .safetensors (safetensors)",
            e.Message);
    }

    [Theory]
    [MemberData(nameof(ModelsStore.Kinds), MemberType = typeof(ModelsStore))]
    public void A_corrupt_file_is_an_error_naming_the_file_and_the_fault(string kind)
    {
        using var store = ModelsStore.Create(kind);
        var file = store.Context.Models!.Combine("truncated.dat").ToString();
        using (var full = new MemoryStream())
        {
            SaveDat(nn.Linear(4, 2), full);
            store.Put("truncated.dat", full.ToArray()[..^5]);
        }
        var spec = SpecOver(store);

        var truncated = Assert.Throws<SpecException>(() => spec.LoadModel("truncated.dat")).Message;
        Assert.Equal($"MLSpec.LoadModel: model tag 'truncated.dat' ({file}) cannot be read as TorchSharp's Module.save (.dat): " +
                     "truncated: the file ends before its content does", truncated);

        store.Put("garbage.ckpt", Encoding.ASCII.GetBytes("RFCK\u0001\0\0\0"));
        Assert.Contains("cannot be read as a RapidFire checkpoint (.ckpt): truncated", Assert.Throws<SpecException>(() => spec.LoadModel("garbage.ckpt")).Message);

        store.Put("garbage.safetensors", Encoding.ASCII.GetBytes("not safetensors at all"));
        Assert.Contains("model tag 'garbage.safetensors' (", Assert.Throws<SpecException>(() => spec.LoadModel("garbage.safetensors")).Message);
        Assert.EndsWith("cannot be read as safetensors (.safetensors): it does not start with a safetensors header (an 8-byte length, then a JSON object)",
            Assert.Throws<SpecException>(() => spec.LoadModel("garbage.safetensors")).Message);

        store.Put("garbage.pt", Encoding.ASCII.GetBytes("PK\u0003\u0004 and then nothing of a zip"));
        Assert.Contains("cannot be read as a PyTorch state dict (torch.save): it is not a readable zip archive",
            Assert.Throws<SpecException>(() => spec.LoadModel("garbage.pt")).Message);
        store.Put("empty.pt", []);
        Assert.EndsWith("it is not a zip archive, the format of torch.save since PyTorch 1.6", Assert.Throws<SpecException>(() => spec.LoadModel("empty.pt")).Message);
    }

    [Fact]
    public void A_file_whose_bytes_say_it_is_another_format_is_refused_with_the_extension_to_give_it()
    {
        using var store = ModelsStore.Create(ModelsStore.Local);
        store.Put("checkpoint.pt", Encoding.ASCII.GetBytes("RFCK\u0001\0\0\0\0\0\0\0"));
        store.Put("weights.dat", Fixture("linear.pt"));
        store.Put("legacy.pt", [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]);
        var spec = SpecOver(store);

        Assert.EndsWith("cannot be read as a PyTorch state dict (torch.save): it is a RapidFire checkpoint (it starts with \"RFCK\"); give it the extension .ckpt",
            Assert.Throws<SpecException>(() => spec.LoadModel("checkpoint.pt")).Message);
        Assert.EndsWith("it is a zip archive, as PyTorch's torch.save writes; give it the extension .pt",
            Assert.Throws<SpecException>(() => spec.LoadModel("weights.dat")).Message);
        Assert.EndsWith("it is a Python pickle, as PyTorch's torch.save wrote before version 1.6 (its legacy format); " +
                        "load it in PyTorch and save it again with torch.save(model.state_dict(), path)",
            Assert.Throws<SpecException>(() => spec.LoadModel("legacy.pt")).Message);
    }

    [Fact]
    public void Unsupported_PyTorch_contents_are_errors_that_say_how_to_save_instead()
    {
        using var store = ModelsStore.Create(ModelsStore.Local);
        store.Put("transposed.pt", Fixture("linear-transposed.pt"));
        store.Put("whole-model.pt", Fixture("linear-parameters.pt"));
        store.Put("other.pt", s => PyTorchPickler.PickleStateDict(s, new Hashtable { ["epoch"] = 3, ["weights"] = new Hashtable() }, leaveOpen: true));
        var spec = SpecOver(store);

        Assert.Contains("a tensor in it is stored as a non-contiguous view",
            Assert.Throws<SpecException>(() => spec.LoadModel("transposed.pt")).Message);
        Assert.Contains("contains the entire model and not just the state_dict",
            Assert.Throws<SpecException>(() => spec.LoadModel("whole-model.pt")).Message);
        Assert.Contains("it holds a dictionary with the keys 'epoch', 'weights', not a state dict",
            Assert.Throws<SpecException>(() => spec.LoadModel("other.pt")).Message);
    }
}
