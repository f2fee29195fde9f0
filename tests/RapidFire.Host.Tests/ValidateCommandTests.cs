using RapidFire.Host.Cli;

namespace RapidFire.Host.Tests;

public sealed class ValidateCommandTests : IDisposable
{
    private readonly string temp = Directory.CreateTempSubdirectory("rf-validate-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    private static (int Code, string Out, string Err) Validate(string spec, string data, string config)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = RapidFireCli.Run(["validate", "--spec", spec, "--data", data, "--config", config], stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(temp, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public void The_mnist_example_validates_and_prints_one_line_per_run()
    {
        var (code, output, errors) = Validate(RepoPaths.MnistExample("MnistSpec.cs"), RepoPaths.MnistExample("datahandle.json"),
            RepoPaths.MnistExample("configs.json"));
        Assert.True(code == 0, errors);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("run 1: {\"model_type\":\"mlp\",\"hidden\":128,\"dropout\":0.1,\"epochs\":3,\"batch_size\":64,\"optimizer\":{\"name\":\"Adam\",\"args\":{\"lr\":0.001}}", lines[0]);
        Assert.Contains("\"lr\":0.003", lines[1]);
        Assert.StartsWith("run 3: {\"model_type\":\"cnn\"", lines[2]);
        Assert.Contains("\"named_metrics\":[\"top1_accuracy\",\"top3_accuracy\"]", lines[3]);
        Assert.Contains("spec: MnistSpec from MnistSpec.cs", errors);
        Assert.Contains("train 2000 rows", errors);
    }

    [Fact]
    public void Broken_inputs_are_all_reported_with_what_is_at_fault()
    {
        var spec = Write("Bad.cs", "using RapidFire.Spec;\npublic class Bad : MLSpec {\n  int x = \"no\";\n}\n");
        Write("train.csv", "id,text\n1,a\n1,b\nx,c\n");
        var data = Write("handle.json", """{ "locators": { "train": "train.csv", "validation": "missing.csv" } }""");
        var config = Write("configs.json", """
            { "search": "grid", "user_knobs": { "h": [] },
              "train": { "epochs": 0, "batch_size": { "range": [16, 64] }, "optimizer": { "name": "Adamm" } } }
            """);

        var (code, output, errors) = Validate(spec, data, config);

        Assert.Equal(RapidFireCli.InvalidInput, code);
        Assert.Empty(output);
        Assert.Contains("Bad.cs(3,11): error CS0029", errors);              // the compile error, with its line
        Assert.Contains("train.csv row 2", errors);                         // the duplicate id
        Assert.Contains("train.csv row 3", errors);                         // the non-integer id
        Assert.Contains("missing.csv", errors);                             // the missing partition file
        Assert.Contains("user_knobs.h", errors);                            // the empty list
        Assert.Contains("train.epochs", errors);                            // non-positive epochs
        Assert.Contains("train.batch_size", errors);                        // a range in a grid
        Assert.Contains("train.optimizer.name", errors);                    // the unknown optimizer
    }

    [Fact]
    public void A_missing_option_is_a_usage_error()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.NotEqual(0, RapidFireCli.Run(["validate", "--spec", "x.cs"], stdout, stderr));
        Assert.Contains("--data", stderr.ToString());
    }
}
