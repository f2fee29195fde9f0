using RapidFire.Host.Cli;
using RapidFire.Spec.Native;

// The `rapidfire` command-line program. TorchSharp's native libraries are prepared before anything else, except for
// `fit`, which first starts its experiment's runtime (actor system and journal) on another thread, then loads them
// beside it (FitCommand): nothing of that runtime's start uses TorchSharp.
if (args.FirstOrDefault() != "fit") TorchNative.EnsureLoaded();
return RapidFireCli.Run(args, Console.Out, Console.Error);
