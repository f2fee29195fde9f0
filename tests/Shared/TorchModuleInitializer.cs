using System.Runtime.CompilerServices;
using RapidFire.Spec.Native;

namespace RapidFire.Tests;

internal static class TorchModuleInitializer
{
    /// <summary>The test host is an entry point too: prepare TorchSharp's native libraries before any test runs.</summary>
    [ModuleInitializer]
    internal static void LoadTorch() => TorchNative.EnsureLoaded();
}
