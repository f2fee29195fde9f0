using RapidFire.Spec.Compilation;

namespace RapidFire.Spec.Tests.Contract;

public class SpecCompilerTests
{
    private const string ValidSpec = """
        using RapidFire.Spec;
        using TorchSharp;
        using static TorchSharp.torch;

        public class TinySpec : MLSpec
        {
            public override object RowPrep(Row row, Config cfg, Mode mode) => torch.tensor(new float[] { row.Id });
            public override nn.Module CreateModel(Config cfg) => nn.Linear(1, cfg.Get<int>("width"));
            public override ForwardResult ComputeForward(nn.Module model, Minibatch minibatch, Config cfg, Mode mode)
            {
                var logits = ((nn.Module<Tensor, Tensor>)model).forward(minibatch.Tensor);
                return (logits.sum(), new Dictionary<string, object> { ["logits"] = logits });
            }
        }
        """;

    [Fact]
    public void A_spec_file_compiles_and_its_single_MLSpec_class_is_found()
    {
        var compiled = SpecCompiler.Compile(ValidSpec, "/specs/TinySpec.cs");
        Assert.Equal("TinySpec", compiled.SpecType.Name);
        Assert.Equal(64, compiled.SourceHash.Length);
        var spec = compiled.CreateInstance();
        var cfg = new Config([new("width", 3)]);
        var model = spec.CreateModel(cfg);
        Assert.Equal(2, model.parameters().Count());
    }

    [Fact]
    public void A_compile_error_is_shown_with_file_line_and_column()
    {
        var broken = ValidSpec.Replace("nn.Linear(1, cfg.Get<int>(\"width\"))", "nn.Linear(1, undefinedWidth)");
        var e = Assert.Throws<SpecCompilationException>(() => SpecCompiler.Compile(broken, "/specs/Broken.cs"));
        var line = Assert.Single(e.Problems);
        Assert.StartsWith("Broken.cs(8,", line);
        Assert.Contains("error CS0103", line);
        Assert.Contains("undefinedWidth", line);
    }

    [Fact]
    public void A_file_without_an_MLSpec_class_is_refused()
    {
        var e = Assert.Throws<SpecCompilationException>(() => SpecCompiler.Compile("public class NotASpec { }", "/specs/Empty.cs"));
        Assert.Equal("Empty.cs: no class derives from RapidFire.Spec.MLSpec", Assert.Single(e.Problems));
    }

    [Fact]
    public void A_file_with_two_MLSpec_classes_is_refused_naming_both()
    {
        var two = ValidSpec + "\npublic class OtherSpec : TinySpec { }\n";
        var e = Assert.Throws<SpecCompilationException>(() => SpecCompiler.Compile(two, "/specs/Two.cs"));
        Assert.Contains("2 classes derive from RapidFire.Spec.MLSpec (TinySpec, OtherSpec)", Assert.Single(e.Problems));
    }

    [Fact]
    public void A_missing_spec_file_is_named()
    {
        var e = Assert.Throws<SpecCompilationException>(() => SpecCompiler.CompileFile("/nowhere/Missing.cs"));
        Assert.Contains("/nowhere/Missing.cs: spec file not found", e.Message);
    }
}
