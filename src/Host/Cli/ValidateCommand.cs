using System.CommandLine;
using RapidFire.Spec;

namespace RapidFire.Host.Cli;

/// <summary><c>rapidfire validate --spec S.cs --data handle.json --config configs.json</c>.</summary>
public static class ValidateCommand
{
    /// <summary>The command: checks all three inputs without training and lists the runs, or every fault.</summary>
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var spec = new Option<FileInfo>("--spec") { Description = "The MLSpec source file (.cs) with exactly one MLSpec class.", Required = true };
        var data = new Option<FileInfo>("--data") { Description = "The data handle (JSON).", Required = true };
        var config = new Option<FileInfo>("--config") { Description = "The config group (JSON).", Required = true };
        var settings = FitCommand.SettingsOption();
        var s3Endpoint = S3Options.Endpoint();
        var command = new Command("validate", "Compile the spec, read every partition's ESF header and ids, and expand the config group, without training.")
        {
            spec, data, config, settings, s3Endpoint,
        };
        command.SetAction(parse =>
        {
            ExperimentInputs inputs;
            try
            {
                using var storage = S3Options.Storage(S3Options.Apply(parse, s3Endpoint, FitCommand.Settings(parse.GetValue(settings))));
                inputs = ExperimentInputs.Check(parse.GetValue(spec)!.FullName, parse.GetValue(data)!.FullName, parse.GetValue(config)!.FullName, storage);
            }
            catch (ConfigException e)
            {
                return RapidFireCli.Rejected(e.Problems, stderr);
            }
            return Report(inputs, stdout, stderr);
        });
        return command;
    }

    /// <summary>Prints the runs of valid inputs (exit 0), or every problem (exit 1).</summary>
    public static int Report(ExperimentInputs inputs, TextWriter stdout, TextWriter stderr)
    {
        if (inputs.Problems.Count > 0)
        {
            stderr.WriteLine($"{inputs.Problems.Count} problem{(inputs.Problems.Count == 1 ? "" : "s")} found:");
            foreach (var problem in inputs.Problems) stderr.WriteLine($"  {problem}");
            return RapidFireCli.InvalidInput;
        }
        foreach (var line in inputs.Summary) stderr.WriteLine(line);
        for (var i = 0; i < inputs.Runs.Count; i++) stdout.WriteLine($"run {i + 1}: {SecretMask.Mask(inputs.Runs[i]).ToJson()}");
        return RapidFireCli.Ok;
    }
}
