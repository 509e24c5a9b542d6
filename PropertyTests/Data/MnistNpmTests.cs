using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Cnn.Core;
using Cnn.Dsl.Data;
using Xunit;

namespace Cnn.Tests.Data;

/// <summary>The real digits, loaded once per test run through the default cache (so CI fetches with npm at most once).</summary>
internal static class RealMnist
{
    private static readonly Lazy<LabeledData> Data = new(() => MnistNpm.Load(), LazyThreadSafetyMode.ExecutionAndPublication);

    public static LabeledData Value => Data.Value;

    /// <summary>The default cache folder's tarball; present once <see cref="Value"/> has been loaded.</summary>
    public static string Tarball
    {
        get
        {
            _ = Value;
            return Path.Combine(MnistNpm.DefaultCacheDirectory, MnistNpm.TarballFileName);
        }
    }
}

/// <summary>A fresh folder under the system's temporary folder, deleted afterwards.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cnn-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

public sealed class MnistNpmTests
{
    private const int Pixels = 28 * 28;
    private static readonly int[] KnownCounts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

    [Fact]
    public void Loads_ten_thousand_28x28_grey_images_with_ten_classes()
    {
        var data = RealMnist.Value;
        Assert.Equal(10_000, data.Count);
        Assert.Equal(new Shape(10_000, 1, 28, 28), data.Images.Shape);
        Assert.Equal(10, data.Classes);
        Assert.Equal(10_000, data.Labels.Count);
    }

    [Fact]
    public void Label_counts_per_digit_are_the_packages_and_the_order_is_file_0_to_9()
    {
        var labels = RealMnist.Value.Labels;
        var counts = new int[10];
        foreach (var l in labels) counts[l]++;
        Assert.Equal(KnownCounts, counts);
        Assert.Equal(KnownCounts, MnistNpm.CountsPerDigit);
        for (int i = 1; i < labels.Count; i++) Assert.True(labels[i - 1] <= labels[i], $"labels not in file order at row {i}");
    }

    [Fact]
    public void Pixels_are_finite_in_0_1_and_use_the_whole_range()
    {
        var px = RealMnist.Value.Images.Span;
        float min = float.MaxValue, max = float.MinValue;
        int outside = -1;
        for (int i = 0; i < px.Length; i++)
        {
            float v = px[i];
            if (!(float.IsFinite(v) && v >= 0f && v <= 1f) && outside < 0) outside = i;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        Assert.True(outside < 0, outside < 0 ? "" : $"pixel {outside} is {px[outside]}; expected a value in [0, 1]");
        Assert.Equal(0f, min);
        Assert.Equal(1f, max);
    }

    [Fact]
    public void Images_differ_from_each_other()
    {
        var px = RealMnist.Value.Images.Span;
        var distinct = new HashSet<string>();
        for (int i = 0; i < 10_000; i++)
            distinct.Add(Convert.ToBase64String(SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(px.Slice(i * Pixels, Pixels)))));
        Assert.True(distinct.Count > 9_900, $"only {distinct.Count} distinct images among 10,000");
    }

    [Fact]
    public void Statistics_look_like_mnist()
    {
        var data = RealMnist.Value;
        var px = data.Images.Span;

        // The mean pixel value of MNIST is about 0.13 (0.1307 on the training set, the usual normalisation constant).
        double sum = 0;
        foreach (var v in px) sum += v;
        double mean = sum / px.Length;
        Assert.InRange(mean, 0.10, 0.16);

        // Ones carry the least ink of all digits, and zeros more than ones.
        var classSum = new double[10];
        for (int i = 0; i < data.Count; i++)
        {
            double s = 0;
            foreach (var v in px.Slice(i * Pixels, Pixels)) s += v;
            classSum[data.Labels[i]] += s;
        }
        var classMean = classSum.Select((s, d) => s / (KnownCounts[d] * (double)Pixels)).ToArray();
        Assert.Equal(1, Array.IndexOf(classMean, classMean.Min()));
        Assert.True(classMean[0] > 1.5 * classMean[1], $"mean of zeros {classMean[0]}, of ones {classMean[1]}");

        // MNIST digits are fitted into 20 x 20 and centred by centre of mass in 28 x 28: the ink's centre is
        // near (13.5, 13.5) and the outermost rows and columns are almost blank.
        double mass = 0, cy = 0, cx = 0, border = 0;
        for (int i = 0; i < px.Length; i++)
        {
            int y = i % Pixels / 28, x = i % 28;
            mass += px[i];
            cy += px[i] * y;
            cx += px[i] * x;
            if (y == 0 || y == 27 || x == 0 || x == 27) border += px[i];
        }
        Assert.InRange(cy / mass, 12.5, 15.0);
        Assert.InRange(cx / mass, 12.5, 15.0);
        Assert.True(border / mass < 0.001, $"{border / mass:P3} of the ink lies on the outermost pixels");
    }

    [Fact]
    public void A_second_load_reads_the_cache_and_gives_the_same_data()
    {
        var first = RealMnist.Value;
        Assert.True(File.Exists(Path.Combine(MnistNpm.DefaultCacheDirectory, MnistNpm.CacheFileName)));
        var second = MnistNpm.Load();
        Assert.True(first.Images.Span.SequenceEqual(second.Images.Span));
        Assert.Equal(first.Labels, second.Labels);
    }

    public static TheoryData<string> Corruptions => new() { "flip-pixel", "flip-header", "flip-hash", "truncate", "append", "empty", "garbage" };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void A_corrupt_cache_file_is_detected_and_rebuilt_from_the_kept_tarball(string corruption)
    {
        using var dir = new TempFolder();
        File.Copy(RealMnist.Tarball, dir.File(MnistNpm.TarballFileName));
        var built = MnistNpm.Load(dir.Path); // from the tarball alone: no npm, no cache file yet
        string bin = dir.File(MnistNpm.CacheFileName);
        var good = File.ReadAllBytes(bin);
        Assert.True(RealMnist.Value.Images.Span.SequenceEqual(built.Images.Span));

        var bad = (byte[])good.Clone();
        switch (corruption)
        {
            case "flip-pixel": bad[bad.Length / 2] ^= 0x01; break;
            case "flip-header": bad[13] ^= 0x40; break;
            case "flip-hash": bad[^1] ^= 0x80; break;
            case "truncate": bad = bad[..(bad.Length - 1000)]; break;
            case "append": bad = [.. bad, 0]; break;
            case "empty": bad = []; break;
            case "garbage": bad = Encoding.ASCII.GetBytes("not a cache file"); break;
        }
        File.WriteAllBytes(bin, bad);

        var rebuilt = MnistNpm.Load(dir.Path);
        Assert.True(RealMnist.Value.Images.Span.SequenceEqual(rebuilt.Images.Span));
        Assert.Equal(RealMnist.Value.Labels, rebuilt.Labels);
        Assert.Equal(good, File.ReadAllBytes(bin));
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir.Path), p => Path.GetFileName(p).StartsWith(".tmp-"));
    }

    [Fact]
    public void A_tarball_with_the_wrong_hash_is_rejected_and_deleted()
    {
        using var dir = new TempFolder();
        // A well-formed .tar.gz with the right entry names: the hash check must come before any parsing.
        var fake = FakeTarball();
        string tgz = dir.File(MnistNpm.TarballFileName);
        File.WriteAllBytes(tgz, fake);
        string found = Convert.ToBase64String(SHA512.HashData(fake));

        var ex = Assert.Throws<CnnException>(() => MnistNpm.Load(dir.Path));
        Assert.Contains(MnistNpm.TarballIntegrity, ex.Message);
        Assert.Contains(found, ex.Message);
        Assert.False(File.Exists(tgz), "the bad tarball should have been deleted");
        Assert.False(File.Exists(dir.File(MnistNpm.CacheFileName)));
    }

    private static byte[] FakeTarball()
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz))
        {
            for (int d = 0; d < 10; d++)
            {
                var json = Encoding.UTF8.GetBytes("{ \"data\": [" + string.Join(",", Enumerable.Repeat("0.5", KnownCounts[d] * Pixels)) + "] }");
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"package/src/digits/{d}.json") { DataStream = new MemoryStream(json) });
            }
        }
        return ms.ToArray();
    }
}

/// <summary>Changes process-wide environment variables, so it runs alone.</summary>
[CollectionDefinition(nameof(CacheDirectoryTests), DisableParallelization = true)]
public sealed class CacheDirectoryCollection;

[Collection(nameof(CacheDirectoryTests))]
public sealed class CacheDirectoryTests
{
    [Fact]
    public void Default_cache_folder_honours_CNN_DSL_CACHE_then_XDG_CACHE_HOME_then_home()
    {
        var own = Environment.GetEnvironmentVariable("CNN_DSL_CACHE");
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            string root = Path.Combine(Path.GetTempPath(), "cnn-cache-test");
            Environment.SetEnvironmentVariable("CNN_DSL_CACHE", Path.Combine(root, "own"));
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", Path.Combine(root, "xdg"));
            Assert.Equal(Path.Combine(root, "own"), MnistNpm.DefaultCacheDirectory);

            Environment.SetEnvironmentVariable("CNN_DSL_CACHE", null);
            Assert.Equal(Path.Combine(root, "xdg", "cnn-dsl"), MnistNpm.DefaultCacheDirectory);

            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "relative/is/ignored");
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            Assert.Equal(Path.Combine(home, ".cache", "cnn-dsl"), MnistNpm.DefaultCacheDirectory);
        }
        finally
        {
            Environment.SetEnvironmentVariable("CNN_DSL_CACHE", own);
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", xdg);
        }
    }
}
