using System.Buffers.Binary;
using System.IO.Compression;
using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.Data;

public sealed class IdxTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("idx");

    public void Dispose() => _dir.Delete(true);

    /// <summary>The bytes of an IDX file: magic 0x0000_08_rank, big-endian sizes, then the data.</summary>
    internal static byte[] IdxBytes(int magic, int[] dims, byte[] data)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        for (int a = 0; a < dims.Length; a++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * a), dims[a]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }

    internal static byte[] Gzip(byte[] bytes)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(bytes);
        return ms.ToArray();
    }

    /// <summary>n images of 3 x 4 whose pixel (r, c) of image i is 10 i + 4 r + c, and labels i mod 10.</summary>
    internal static (byte[] Images, byte[] Labels) Digits(int n)
    {
        var px = new byte[n * 12];
        for (int i = 0; i < n; i++) for (int k = 0; k < 12; k++) px[i * 12 + k] = (byte)(10 * i + k);
        var labels = Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
        return (IdxBytes(Idx.ImagesMagic, [n, 3, 4], px), IdxBytes(Idx.LabelsMagic, [n], labels));
    }

    private string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir.FullName, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ImagesAndLabelsAreReadPlainAndGzipped(bool gz)
    {
        var (img, lab) = Digits(5);
        var data = Idx.Load(Write("i", gz ? Gzip(img) : img), Write("l", gz ? Gzip(lab) : lab));
        Assert.Equal(new Shape(5, 1, 3, 4), data.Images.Shape);
        Assert.Equal(10, data.Classes);
        Assert.Equal([0, 1, 2, 3, 4], data.Labels);
        // image 2, row 1, column 3: byte 10*2 + 4 + 3 = 27
        Assert.Equal(27 / 255f, data.Images[2 * 12 + 1 * 4 + 3]);
    }

    [Theory]
    [InlineData("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", false)]
    [InlineData("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", true)]
    [InlineData("train-images.idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", false)]
    public void AFolderWithTheUsualNamesLoads(string trainImages, string trainLabels, string testImages, string testLabels, bool gz)
    {
        var (img, lab) = Digits(6);
        var (timg, tlab) = Digits(2);
        byte[] Z(byte[] b) => gz ? Gzip(b) : b;
        Write(trainImages, Z(img));
        Write(trainLabels, Z(lab));
        Write(testImages, Z(timg));
        Write(testLabels, Z(tlab));
        var split = Idx.LoadDirectory(_dir.FullName);
        Assert.Equal(6, split.First.Count);
        Assert.Equal(2, split.Second.Count);
    }

    [Fact]
    public void AMissingFileIsNamed()
    {
        var e = Assert.Throws<CnnException>(() => Idx.LoadDirectory(_dir.FullName));
        Assert.Contains("train-images-idx3-ubyte", e.Message);
    }

    public static TheoryData<string, byte[], string> Malformed()
    {
        var (img, _) = Digits(3);
        var floats = IdxBytes(0x00000D03, [1, 1, 1], new byte[4]);
        return new TheoryData<string, byte[], string>
        {
            { "empty", Array.Empty<byte>(), "fewer than the 16-byte header" },
            { "labels magic", IdxBytes(Idx.LabelsMagic, [3], new byte[20]), "magic 0x00000801, expected 0x00000803" },
            { "float images", floats, "not unsigned bytes" },
            { "short", img[..^1], "the file has 51" },
            { "long", [.. img, 0], "the file has 53" },
            { "lying header", IdxBytes(Idx.ImagesMagic, [60000, 28, 28], new byte[10]), "need 47040016 bytes" },
            { "overflow", IdxBytes(Idx.ImagesMagic, [int.MaxValue, int.MaxValue, 2], new byte[10]), "more than" },
            { "negative size", IdxBytes(Idx.ImagesMagic, [-1, 2, 2], new byte[10]), "exceeds" },
            { "gz truncated", Gzip(img)[..20], "gzip trailer" },
            { "gz lying", Gzip(IdxBytes(Idx.ImagesMagic, [60000, 28, 28], new byte[10])), "need 47040016 bytes inflated, but the gzip trailer (the file's last 4 bytes) says 26" },
            { "gz more data", Gzip([.. img, 1, 2]), "says 54" },
            { "gz trailing garbage", [.. Gzip(img), 0x42, 0x42, 0x42, 0x42], "has bytes after its gzip member" },
            { "gz corrupt", Gzip(img) is var z ? [.. z[..12], .. z[12..].Select(b => (byte)~b)] : z, "gzip" },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedImageFilesAreRejectedNamingTheFile(string name, byte[] bytes, string defect)
    {
        var path = Write(name, bytes);
        var e = Assert.Throws<FormatException>(() => Idx.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.True(e.Message.Contains(defect, StringComparison.Ordinal), e.Message);
    }

    [Fact]
    public void ImagesAndLabelsMustAgreeAndLabelsMustBeClasses()
    {
        var (img, _) = Digits(3);
        var lab4 = IdxBytes(Idx.LabelsMagic, [4], new byte[4]);
        Assert.Contains("4 labels", Assert.Throws<FormatException>(() => Idx.Load(Write("i", img), Write("l", lab4))).Message);
        var bad = IdxBytes(Idx.LabelsMagic, [3], [1, 10, 2]);
        Assert.Contains("label 1 is 10", Assert.Throws<FormatException>(() => Idx.Load(Write("i", img), Write("l", bad))).Message);
    }

    /// <summary>Truncated, flipped and re-sized files, plain or gzipped, give our FormatException or a valid read.</summary>
    [Property(MaxTest = 150)]
    public Property MutatedFilesOnlyEverRaiseFormatException() =>
        Prop.ForAll((from n in Gen.Choose(0, 4)
                     from kind in Gen.Choose(0, 2)
                     from gz in Gen.Elements(false, true)
                     from pos in Gen.Choose(0, 10_000)
                     from value in Gen.Choose(0, 255)
                     select (n, kind, gz, pos, value)).ToArbitrary(), t =>
        {
            var (img, _) = Digits(t.n);
            var bytes = t.gz ? Gzip(img) : img;
            int at = t.pos % bytes.Length;
            byte[] m = t.kind switch
            {
                0 => bytes[..at],
                1 => bytes.Select((b, i) => i == at ? (byte)t.value : b).ToArray(),
                _ => t.gz ? Gzip(img.Select((b, i) => i == 4 + t.pos % 12 ? (byte)t.value : b).ToArray())
                          : img.Select((b, i) => i == 4 + t.pos % 12 ? (byte)t.value : b).ToArray(),
            };
            var path = Path.Combine(_dir.FullName, $"m{Guid.NewGuid():N}");
            File.WriteAllBytes(path, m);
            try { Idx.ReadImages(path); return true; }
            catch (FormatException e) { return e.Message.Contains(path, StringComparison.Ordinal); }
            finally { File.Delete(path); }
        });
}
