using System.Globalization;
using Cnn.Core;
using Microsoft.ML.OnnxRuntime;

namespace Cnn.Onnx;

/// <summary>
/// The ONNX Runtime execution providers <see cref="OnnxPredictorOptions.Provider"/> names, and the check that the installed
/// ONNX Runtime package has the one asked for: each provider ships in its own package (CUDA and TensorRT in
/// <c>Microsoft.ML.OnnxRuntime.Gpu</c>, DirectML in <c>Microsoft.ML.OnnxRuntime.DirectML</c>), and the plain
/// <c>Microsoft.ML.OnnxRuntime</c> this library references has the CPU provider only.
/// </summary>
public static class OnnxProviders
{
    /// <summary>The provider words: <c>cpu</c>, and <c>cuda</c>, <c>tensorrt</c>, <c>rocm</c>, <c>dml</c>, each optionally <c>:N</c> for a device index.</summary>
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda", "tensorrt", "rocm", "dml"];

    /// <summary>The execution providers the installed ONNX Runtime has (ONNX Runtime's names, such as <c>CPUExecutionProvider</c>).</summary>
    public static IReadOnlyList<string> Available => OrtEnv.Instance().GetAvailableProviders();

    /// <summary>Adds the provider <paramref name="provider"/> names to <paramref name="options"/> (nothing for <c>cpu</c>, which is always there).</summary>
    /// <exception cref="CnnException">The word is unknown, or the installed ONNX Runtime lacks the provider; the message names the package that has it.</exception>
    internal static void Append(SessionOptions options, string provider)
    {
        var (word, device) = Parse(provider);
        if (word == "cpu") return;
        var (ortName, package) = word switch
        {
            "cuda" => ("CUDAExecutionProvider", "Microsoft.ML.OnnxRuntime.Gpu (Linux: Microsoft.ML.OnnxRuntime.Gpu.Linux)"),
            "tensorrt" => ("TensorrtExecutionProvider", "Microsoft.ML.OnnxRuntime.Gpu (with TensorRT installed)"),
            "rocm" => ("ROCMExecutionProvider", "an ONNX Runtime build with ROCm"),
            _ => ("DmlExecutionProvider", "Microsoft.ML.OnnxRuntime.DirectML (Windows)"),
        };
        var available = Available;
        if (!available.Contains(ortName))
            throw new CnnException($"ONNX Runtime provider '{provider}' ({ortName}) is not in the installed ONNX Runtime package, which has {string.Join(", ", available)}; " +
                                   $"reference {package} in place of Microsoft.ML.OnnxRuntime.");
        try
        {
            switch (word)
            {
                case "cuda": options.AppendExecutionProvider_CUDA(device); break;
                case "tensorrt": options.AppendExecutionProvider_Tensorrt(device); break;
                case "rocm": options.AppendExecutionProvider_ROCm(device); break;
                default: options.AppendExecutionProvider_DML(device); break;
            }
        }
        // The provider is compiled in but cannot start: no device of that index, no driver, missing CUDA libraries.
        catch (OnnxRuntimeException e)
        {
            throw new CnnException($"ONNX Runtime provider '{provider}' ({ortName}) could not start: {e.Message.Split('\n')[0].Trim()}", e);
        }
    }

    private static (string Word, int Device) Parse(string provider)
    {
        var p = provider.Trim().ToLowerInvariant();
        int colon = p.IndexOf(':');
        var word = colon < 0 ? p : p[..colon];
        int device = 0;
        if (!Names.Contains(word) || (colon >= 0 && (word == "cpu" || !int.TryParse(p.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out device))))
            throw new CnnException($"Unknown ONNX Runtime provider '{provider}': expected cpu, or cuda, tensorrt, rocm or dml with an optional :N device index.");
        return (word, device);
    }
}
