using Cnn.Core;
using TorchSharp;

namespace Cnn.Interop.LibTorch;

/// <summary>
/// Loads LibTorch once per process and turns a failure to load it into a <see cref="CnnException"/> that
/// names the usual cause, instead of TorchSharp's long type-initialisation trace.
/// </summary>
public static class LibTorchRuntime
{
    private static readonly Lazy<Exception?> Failure = new(TryLoad, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Whether LibTorch loaded in this process (loading it on the first call).</summary>
    public static bool IsAvailable => Failure.Value is null;

    /// <summary>
    /// Makes sure LibTorch's native libraries are loaded; cheap after the first call. Every entry point of this
    /// assembly calls it, so a caller needs it only to fail early.
    /// </summary>
    /// <exception cref="CnnException">LibTorch could not be loaded; the message names the likely cause and the fix.</exception>
    public static void EnsureLoaded()
    {
        var failure = Failure.Value;
        if (failure is not null) throw new CnnException(Explain(failure), failure);
    }

    private static Exception? TryLoad()
    {
        try
        {
            // The first use of `torch` runs its static constructor, which loads libLibTorchSharp.so and libtorch.
            using var probe = torch.zeros(1);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or NotSupportedException or DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            return e;
        }
    }

    private static string Explain(Exception failure)
    {
        var root = failure;
        while (root.InnerException is not null) root = root.InnerException;
        string firstLine = root.Message.Split('\n', 2)[0].Trim();
        string folder = AppContext.BaseDirectory;
        bool flat = File.Exists(Path.Combine(folder, "libLibTorchSharp.so")) || File.Exists(Path.Combine(folder, "LibTorchSharp.dll")) || File.Exists(Path.Combine(folder, "libLibTorchSharp.dylib"));
        return
            "LibTorch (TorchSharp-cpu 0.107.0) could not be loaded in this process. " +
            "On Linux the usual cause is that TorchSharp's native shim libLibTorchSharp.so was built with GCC 13+ and requires " +
            "libstdc++ version GLIBCXX_3.4.32, which older systems such as Debian 12 (GCC 12) do not have; " +
            "`ldd libLibTorchSharp.so` then reports \"version `GLIBCXX_3.4.32' not found\". " +
            "The build fixes this: the target FixLibTorchSharpVersionNeeds in Directory.Build.targets (build/ElfVersionFix.cs) " +
            "marks that version need weak in the copy of libLibTorchSharp.so in the output folder. It runs only when the natives are " +
            "copied flat into the output, so the project that runs TorchSharp must set " +
            "<RuntimeIdentifier>$(NETCoreSdkRuntimeIdentifier)</RuntimeIdentifier>, and the output must come from `dotnet build` " +
            "(not a copy made before the fix). " +
            (flat
                ? $"libLibTorchSharp.so is in the output folder {folder}; rebuild so that the fix is applied to it. "
                : $"No libLibTorchSharp.so was found flat in the output folder {folder}: the RuntimeIdentifier is probably missing. ") +
            $"TorchSharp said: {firstLine}";
    }
}
