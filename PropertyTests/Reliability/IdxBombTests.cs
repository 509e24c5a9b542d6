using System.IO.Compression;
using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Tests.Data;
using Xunit;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.Reliability;

/// <summary>
/// Issue 15: reading IDX files costs what is asked, not what a header claims. A 762 KB gzip of 1,000,000 blank
/// 28x28 images used to take 4.65 GB even with a limit of 10; these tests build such a file and measure.
/// </summary>
public sealed class IdxBombTests(IdxBombTests.BombFiles bomb) : IDisposable, IClassFixture<IdxBombTests.BombFiles>
{
    private const int Blank = 1_000_000;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("idx-bomb");

    /// <summary>The bomb, built once for the class: 1,000,000 blank images and as many labels, gzipped.</summary>
    public sealed class BombFiles : IDisposable
    {
        private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("idx-bomb-files");

        public BombFiles()
        {
            Images = GzipZeros(System.IO.Path.Combine(_dir.FullName, "images.gz"), Idx.ImagesMagic, [Blank, 28, 28], (long)Blank * 784);
            Labels = GzipZeros(System.IO.Path.Combine(_dir.FullName, "labels.gz"), Idx.LabelsMagic, [Blank], Blank);
        }

        public string Images { get; }

        public string Labels { get; }

        public void Dispose() => _dir.Delete(true);
    }

    public void Dispose() => _dir.Delete(true);

    private string Path(string name) => System.IO.Path.Combine(_dir.FullName, name);

    /// <summary>Writes a gzip IDX file of the given header whose elements are <paramref name="elements"/> zero bytes, streaming.</summary>
    private static string GzipZeros(string path, int magic, int[] dims, long elements)
    {
        using var fs = File.Create(path);
        using var gz = new GZipStream(fs, CompressionLevel.Optimal);
        gz.Write(IdxTests.IdxBytes(magic, dims, []));
        var zeros = new byte[1 << 20];
        for (long left = elements; left > 0; left -= zeros.Length) gz.Write(zeros, 0, (int)Math.Min(zeros.Length, left));
        return path;
    }

    private (string Images, string Labels) Bomb() => (bomb.Images, bomb.Labels);

    /// <summary>Bytes allocated on this thread by <paramref name="action"/>.</summary>
    private static long Allocated(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void ABombReadWithALimitOfTenAllocatesKilobytesNotGigabytes()
    {
        var (images, labels) = Bomb();
        Assert.InRange(new FileInfo(images).Length, 1, 2_000_000); // the bomb really is small on disk: about 760 KB
        ByteImageSet? data = null;
        long bytes = Allocated(() => data = Idx.LoadBytes(images, labels, limit: 10));
        Assert.Equal(10, data!.Count);
        Assert.Equal(new Cnn.Core.Shape(1, 28, 28), data.SampleShape);
        Assert.All(data.Labels, l => Assert.Equal(0, l));
        // Two gzip streams' buffers and window (tens of KB each) and 10 x 784 pixels: far below 4 MB.
        Assert.True(bytes < 4 << 20, $"reading 10 images of the bomb allocated {bytes:N0} bytes");
    }

    [Fact]
    public void ABombWithoutALimitIsReadAsBytesNotFloats()
    {
        // 784 MB declared, within Idx.MaxBytes: read in full it costs its bytes once (not 4.65 GB, not 3 GB of floats).
        var (images, labels) = Bomb();
        ByteImageSet? data = null;
        long bytes = Allocated(() => data = Idx.LoadBytes(images, labels));
        Assert.Equal(Blank, data!.Count);
        Assert.InRange(bytes, 784_000_000L, 800_000_000L);
    }

    [Fact]
    public void CountsThatDisagreeAreRejectedBeforeAnyImageIsInflated()
    {
        var images = bomb.Images;
        var labels = GzipZeros(Path("labels.gz"), Idx.LabelsMagic, [5], 5);
        FormatException? e = null;
        long bytes = Allocated(() => e = Assert.Throws<FormatException>(() => Idx.LoadBytes(images, labels)));
        Assert.Contains("holds 1000000 images but", e!.Message);
        Assert.True(bytes < 4 << 20, $"rejecting the pair allocated {bytes:N0} bytes");
    }

    [Fact]
    public void ABadLabelIsFoundBeforeTheImagesAreInflated()
    {
        var images = bomb.Images;
        var labelBytes = new byte[Blank];
        labelBytes[3] = 10;
        var labels = Path("labels");
        File.WriteAllBytes(labels, IdxTests.IdxBytes(Idx.LabelsMagic, [Blank], labelBytes));
        FormatException? e = null;
        long bytes = Allocated(() => e = Assert.Throws<FormatException>(() => Idx.LoadBytes(images, labels)));
        Assert.Contains("label 3 is 10", e!.Message);
        Assert.True(bytes < 8 << 20, $"rejecting the labels allocated {bytes:N0} bytes (the labels are 1 MB)");
    }

    [Fact]
    public void AHeaderDeclaringMoreThanTheCapIsRejectedUnread()
    {
        // 2,000,000 x 28 x 28 = 1.57 GB declared, in a file of 16 bytes: rejected on its header, whatever the limit.
        var path = Path("huge");
        File.WriteAllBytes(path, IdxTests.IdxBytes(Idx.ImagesMagic, [2_000_000, 28, 28], []));
        var e = Assert.Throws<FormatException>(() => Idx.ReadImages(path));
        Assert.Contains($"more than the reader's cap of {Idx.MaxBytes}", e.Message);
        File.WriteAllBytes(Path("l"), IdxTests.IdxBytes(Idx.LabelsMagic, [2_000_000], []));
        Assert.Throws<FormatException>(() => Idx.LoadBytes(path, Path("l"), limit: 1));
    }

    [Fact]
    public void TrailingBytesAfterTheGzipMemberAreRejectedEvenWithALimit()
    {
        var (img, lab) = IdxTests.Digits(4);
        File.WriteAllBytes(Path("i"), [.. IdxTests.Gzip(img), 1, 2, 3, 4, 5]);
        File.WriteAllBytes(Path("l"), lab);
        foreach (int? limit in new int?[] { null, 1 })
        {
            var e = Assert.Throws<FormatException>(() => Idx.LoadBytes(Path("i"), Path("l"), limit: limit));
            Assert.Contains("has bytes after its gzip member", e.Message);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ALimitKeepsTheFirstExamplesExactly(bool gz)
    {
        var (img, lab) = IdxTests.Digits(7);
        File.WriteAllBytes(Path("i"), gz ? IdxTests.Gzip(img) : img);
        File.WriteAllBytes(Path("l"), gz ? IdxTests.Gzip(lab) : lab);
        var all = Idx.LoadBytes(Path("i"), Path("l"));
        foreach (int limit in new[] { 0, 3, 7, 100 })
        {
            var some = Idx.LoadBytes(Path("i"), Path("l"), limit: limit);
            int n = Math.Min(limit, 7);
            Assert.Equal(n, some.Count);
            Assert.True(all.Pixels[..(n * 12)].SequenceEqual(some.Pixels));
            Assert.Equal(all.Labels.Take(n), some.Labels);
        }
        Assert.True(Idx.Load(Path("i"), Path("l"), limit: 3).Images.Span.SequenceEqual(all.Batch(0, 3).ToLabeledData().Images.Span));
    }
}
