using RapidFire.Actors.Control;
using RapidFire.Actors.Runs;
using RapidFire.Host.Cli;
using RapidFire.Spec;
using static RapidFire.Host.Tests.RecordingExperimentControl;

namespace RapidFire.Host.Tests;

/// <summary>Secret-looking knobs and connection-string passwords stay out of the files and the CLI's output.</summary>
public sealed class SecretMaskingTests : IDisposable
{
    private const string Secret = "sk-live-do-not-show-1234";

    private readonly string dir = Directory.CreateTempSubdirectory("rf-secrets-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public void Runs_csv_shows_secret_knobs_masked()
    {
        var files = new ExperimentFiles(dir);
        var run = Ended(InSecondEpoch(1, ConfigWith(64, 0.001).With("hf_token", Secret).With("db", new Dictionary<string, object?> { ["password"] = Secret })),
            RunStatus.Completed, EndReason.Epochs);

        files.WriteRuns([run]);

        var text = File.ReadAllText(files.RunsFile);
        Assert.DoesNotContain(Secret, text);
        var header = text.Split('\n')[0].Trim().Split(',');
        var row = text.Split('\n')[1].Trim().Split(',');
        Assert.Equal("***", row[Array.IndexOf(header, "hf_token")]);
        Assert.Equal("***", row[Array.IndexOf(header, "db.password")]);
        Assert.Equal("64", row[Array.IndexOf(header, "hidden")]);
    }

    [Fact]
    public void Experiment_log_lines_have_passwords_and_secret_clone_arguments_masked()
    {
        var files = new ExperimentFiles(dir);

        files.Log("the journal of experiment x cannot be used: Host=db;Username=rf;Password=hunter2;Database=rf");
        files.Log($"ic op 1: {ControlOp.CloneOf(1, new Dictionary<string, string> { ["hidden"] = "32", ["api_key"] = Secret })} requested");

        var log = File.ReadAllText(files.LogFile);
        Assert.DoesNotContain("hunter2", log);
        Assert.DoesNotContain(Secret, log);
        Assert.Contains("Password=***;Database=rf", log);
        Assert.Contains("clone run 1 hidden=32 api_key=*** requested", log);
    }

    [Fact]
    public void Ic_log_csv_shows_a_clones_secret_arguments_masked()
    {
        var files = new ExperimentFiles(dir);
        var op = ControlOp.CloneOf(1, new Dictionary<string, string> { ["optimizer.args.lr"] = "0.01", ["aws_secret_access_key"] = Secret });

        files.Control(new ControlRecord(1, DateTime.UtcNow, op, ControlStatus.Pending, "pending", null, null));

        var text = File.ReadAllText(files.ControlLogFile);
        Assert.DoesNotContain(Secret, text);
        Assert.Contains("optimizer.args.lr=0.01 aws_secret_access_key=***", text);
    }

    [Fact]
    public void A_clone_that_changes_a_secret_knobs_kind_is_refused_without_showing_either_value()
    {
        var parent = ConfigWith(64, 0.001).With("api_key", Secret);

        var refused = Assert.Throws<ConfigException>(() => ControlRules.CloneConfig(parent, new Dictionary<string, string> { ["api_key"] = "12345" }));

        Assert.Contains("api_key", refused.Message);
        Assert.DoesNotContain(Secret, refused.Message);
        Assert.DoesNotContain("12345", refused.Message);
    }

    [Fact]
    public void Validate_prints_each_runs_config_with_secret_knobs_masked()
    {
        var config = Path.Combine(dir, "configs.json");
        File.WriteAllText(config, $$"""
            { "user_knobs": { "model_type": "mlp", "hidden": 16, "dropout": 0.0, "hf_token": "{{Secret}}" },
              "train": { "epochs": 1, "batch_size": 32, "optimizer": { "name": "Adam", "args": { "lr": [0.001, 0.01] } } } }
            """);
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        var code = RapidFireCli.Run(["validate", "--spec", RepoPaths.MnistExample("MnistSpec.cs"), "--data", RepoPaths.MnistExample("datahandle.json"),
            "--config", config], stdout, stderr);

        Assert.True(code == 0, stderr.ToString());
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"hf_token\":\"***\"", l));
        Assert.DoesNotContain(Secret, stdout.ToString() + stderr);
    }

    [Fact]
    public void Runs_list_masks_the_secret_columns_of_a_runs_csv_written_before_masking()
    {
        var folder = Path.Combine(dir, "exp");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "runs.csv"), $"""
            run_id,status,ended_by,epochs_done,hidden,api_key,val_loss,error
            1,Completed,epochs,3,64,{Secret}-a,0.4,
            2,Completed,epochs,3,128,{Secret}-b,0.5,
            """);
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        var code = RapidFireCli.Run(["runs", "list", "--experiment", "exp", "--dir", dir], stdout, stderr);

        Assert.True(code == 0, stderr.ToString());
        Assert.Contains("hidden", stdout.ToString());
        Assert.DoesNotContain(Secret, stdout.ToString());
    }
}
