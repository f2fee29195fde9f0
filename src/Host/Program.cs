using RapidFire.Host.Cli;
using RapidFire.Spec.Native;

// The `rapidfire` command-line program. TorchSharp's native libraries are prepared before anything else.
TorchNative.EnsureLoaded();
return RapidFireCli.Run(args, Console.Out, Console.Error);
