using System.Globalization;
using System.Text;
using Cnn.Core;

namespace Cnn.Dsl.IO;

/// <summary>
/// The one way input files are opened and read: only regular files (a device such as <c>/dev/zero</c>, a named pipe
/// or a folder is refused before it is opened, so nothing waits on a pipe or reads an endless stream), and only up
/// to a size checked before anything is allocated. Every reader of the library and the command line goes through
/// here, each with its own cap:
/// <list type="bullet">
/// <item><see cref="MaxBytes"/>: any input file (checkpoints, .npy arrays, CIFAR-10 batches, ONNX models, images),
/// 2 GiB by default (the largest .NET array), lower with the environment variable <c>CNN_MAX_INPUT_BYTES</c>.</item>
/// <item>Formats add their own, smaller caps: a network description (<see cref="NetworkJson.MaxBytes"/>), a
/// safetensors header (<see cref="SafeTensors.MaxHeaderBytes"/>), a picture's pixels (the command line's
/// <c>CNN_MAX_PIXELS</c>).</item>
/// </list>
/// </summary>
public static class InputFile
{
    /// <summary>The environment variable that sets <see cref="MaxBytes"/> (a byte count).</summary>
    public const string MaxBytesVariable = "CNN_MAX_INPUT_BYTES";

    /// <summary>The default of <see cref="MaxBytes"/>: 2 GiB - 1, the most one .NET byte array holds.</summary>
    public const long DefaultMaxBytes = int.MaxValue;

    /// <summary>The largest input file read: <c>CNN_MAX_INPUT_BYTES</c> when set (at most the default), else <see cref="DefaultMaxBytes"/>.</summary>
    public static long MaxBytes => Limit(MaxBytesVariable, DefaultMaxBytes, DefaultMaxBytes);

    /// <summary>A byte or count limit: the environment variable's value when it is a positive integer (clamped to <paramref name="ceiling"/>), else <paramref name="fallback"/>.</summary>
    /// <exception cref="CnnException">The variable is set but is not a positive integer.</exception>
    public static long Limit(string variable, long fallback, long ceiling = long.MaxValue)
    {
        var text = Environment.GetEnvironmentVariable(variable);
        if (string.IsNullOrWhiteSpace(text)) return fallback;
        if (!long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v <= 0)
            throw new CnnException($"The environment variable {variable} expects a positive integer; found '{text}'.");
        return Math.Min(v, ceiling);
    }

    /// <summary>
    /// Checks that <paramref name="path"/> is a regular file of at most <paramref name="maxBytes"/> bytes and returns
    /// its length.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="what">What the file is, for messages ("checkpoint", "CIFAR-10 batch").</param>
    /// <param name="maxBytes">The cap (default <see cref="MaxBytes"/>).</param>
    /// <param name="capName">How a user raises the cap, for the message (default the environment variable).</param>
    /// <exception cref="CnnException">The path is missing, is not a regular file, or is larger than the cap.</exception>
    public static long Check(string path, string what, long? maxBytes = null, string? capName = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var kind = FileKinds.Of(path);
        if (kind == FileKind.Missing) throw new CnnException($"Cannot read {what} '{path}': no such file.");
        if (kind != FileKind.Regular)
            throw new CnnException($"Cannot read {what} '{path}': it is {FileKinds.Describe(kind)}; expected a regular file.");
        long length;
        try { length = new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CnnException($"Cannot read {what} '{path}': {e.Message}", e); }
        long cap = maxBytes ?? MaxBytes;
        if (length > cap)
            throw new CnnException($"Cannot read {what} '{path}': it has {length:N0} bytes; the limit is {cap:N0} ({capName ?? MaxBytesVariable + " raises it up to " + DefaultMaxBytes.ToString("N0", CultureInfo.InvariantCulture)}).");
        return length;
    }

    /// <summary>Opens a regular file of at most <paramref name="maxBytes"/> bytes for reading.</summary>
    /// <exception cref="CnnException">See <see cref="Check"/>; or the file cannot be opened.</exception>
    public static FileStream OpenRead(string path, string what, long? maxBytes = null, string? capName = null)
    {
        Check(path, what, maxBytes, capName);
        try { return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CnnException($"Cannot read {what} '{path}': {e.Message}", e); }
    }

    /// <summary>
    /// The bytes of a regular file of at most <paramref name="maxBytes"/> bytes. The read stops at the length checked
    /// before opening: a file that grows meanwhile is an error, not an unbounded read.
    /// </summary>
    /// <exception cref="CnnException">See <see cref="Check"/>; or the file cannot be read or changed length while read.</exception>
    public static byte[] ReadAllBytes(string path, string what, long? maxBytes = null, string? capName = null)
    {
        using var fs = OpenRead(path, what, maxBytes, capName);
        try
        {
            long length = fs.Length;
            long cap = maxBytes ?? MaxBytes;
            if (length > cap) throw new CnnException($"Cannot read {what} '{path}': it has {length:N0} bytes; the limit is {cap:N0}.");
            var bytes = new byte[length];
            fs.ReadExactly(bytes);
            if (fs.ReadByte() != -1) throw new CnnException($"Cannot read {what} '{path}': it grew while being read.");
            return bytes;
        }
        catch (EndOfStreamException e) { throw new CnnException($"Cannot read {what} '{path}': it shrank while being read.", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new CnnException($"Cannot read {what} '{path}': {e.Message}", e); }
    }

    /// <summary>The text (UTF-8) of a regular file of at most <paramref name="maxBytes"/> bytes.</summary>
    /// <exception cref="CnnException">See <see cref="ReadAllBytes"/>.</exception>
    public static string ReadAllText(string path, string what, long? maxBytes = null, string? capName = null)
    {
        var bytes = ReadAllBytes(path, what, maxBytes, capName);
        int bom = bytes.AsSpan().StartsWith(Encoding.UTF8.Preamble) ? 3 : 0;
        return Encoding.UTF8.GetString(bytes, bom, bytes.Length - bom);
    }
}
