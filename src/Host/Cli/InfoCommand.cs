using System.CommandLine;
using RapidFire.Spec.Native;
using TorchSharp;

namespace RapidFire.Host.Cli;

/// <summary><c>rapidfire info</c>: which TorchSharp and libtorch this program runs on, and the devices it sees.</summary>
public static class InfoCommand
{
    /// <summary>The command: the native set-up, the libtorch files loaded, and CUDA's availability and device count.</summary>
    public static Command Create(TextWriter stdout)
    {
        var command = new Command("info", $"Show the TorchSharp version, the libtorch files loaded (from the backend package, or from {TorchNative.LibTorchDirVariable} / {TorchNative.LibTorchDirSetting}) and the CUDA devices.")
        {
            FitCommand.SettingsOption(),
        };
        command.SetAction(_ =>
        {
            stdout.WriteLine($"rapidfire:  {typeof(InfoCommand).Assembly.GetName().Version}");
            stdout.WriteLine($"torchsharp: {typeof(torch).Assembly.GetName().Version}");
            stdout.WriteLine($"native:     {TorchNative.EnsureLoaded()}");
            // a first tensor makes TorchSharp load its backend, so that what it loaded is listed too
            using (var probe = torch.zeros(1)) { }
            foreach (var library in TorchNative.LoadedLibraries())
                stdout.WriteLine($"loaded:     {library}");
            var cuda = torch.cuda.is_available();
            stdout.WriteLine($"cuda:       {(cuda ? $"available, {torch.cuda.device_count()} device(s)" : "not available")}");
            return RapidFireCli.Ok;
        });
        return command;
    }
}
