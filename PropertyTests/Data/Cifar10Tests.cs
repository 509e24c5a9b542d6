using Cnn.Core;
using Cnn.Dsl.Data;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.Data;

public sealed class Cifar10Tests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cifar");

    public void Dispose() => _dir.Delete(true);

    /// <summary>n records: label i mod 10, then red, green, blue planes whose byte at (y, x) is (i + 3 c + y + x) mod 256.</summary>
    internal static byte[] Records(int n, int firstLabel = 0)
    {
        var b = new byte[n * Cifar10.RecordBytes];
        for (int i = 0; i < n; i++)
        {
            int o = i * Cifar10.RecordBytes;
            b[o] = (byte)((firstLabel + i) % 10);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        b[o + 1 + c * 1024 + y * 32 + x] = (byte)((i + 3 * c + y + x) % 256);
        }
        return b;
    }

    [Fact]
    public void RecordsAreLabelThenChannelMajorPlanes()
    {
        var path = Path.Combine(_dir.FullName, "data_batch_1.bin");
        File.WriteAllBytes(path, Records(3, firstLabel: 7));
        var d = Cifar10.ReadBatch(path);
        Assert.Equal(new Shape(3, 3, 32, 32), d.Images.Shape);
        Assert.Equal([7, 8, 9], d.Labels);
        // record 2, green (c = 1), y = 5, x = 30: (2 + 3 + 5 + 30) = 40
        Assert.Equal(40 / 255f, d.Images[((2 * 3 + 1) * 32 + 5) * 32 + 30]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AFolderLoadsEveryTrainingBatchPresentAndTheTestBatch(bool subfolder)
    {
        var dir = subfolder ? Directory.CreateDirectory(Path.Combine(_dir.FullName, "cifar-10-batches-bin")).FullName : _dir.FullName;
        File.WriteAllBytes(Path.Combine(dir, "data_batch_1.bin"), Records(2));
        File.WriteAllBytes(Path.Combine(dir, "data_batch_2.bin"), Records(3, firstLabel: 2));
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), Records(1));
        var split = Cifar10.LoadDirectory(_dir.FullName);
        Assert.Equal([0, 1, 2, 3, 4], split.First.Labels);
        Assert.Equal(1, split.Second.Count);
        Assert.Equal("cat", Cifar10.ClassNames[3]);
    }

    [Fact]
    public void AFolderWithoutBatchesSaysWhatItExpected()
    {
        Assert.Contains("data_batch_1.bin", Assert.Throws<CnnException>(() => Cifar10.LoadDirectory(_dir.FullName)).Message);
        File.WriteAllBytes(Path.Combine(_dir.FullName, "data_batch_1.bin"), Records(1));
        Assert.Contains("test_batch.bin", Assert.Throws<CnnException>(() => Cifar10.LoadDirectory(_dir.FullName)).Message);
    }

    public static TheoryData<string, byte[], string> Malformed()
    {
        var labelTen = Records(2);
        labelTen[Cifar10.RecordBytes] = 10;
        return new TheoryData<string, byte[], string>
        {
            { "empty", [], "it is empty" },
            { "short", Records(1)[..^1], "0 records and 3072 bytes over" },
            { "long", [.. Records(1), 0], "1 records and 1 bytes over" },
            { "label 10", labelTen, "record 1 (byte offset 3073) has label 10" },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedBatchesAreRejectedNamingTheFile(string name, byte[] bytes, string defect)
    {
        var path = Path.Combine(_dir.FullName, name + ".bin");
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<FormatException>(() => Cifar10.ReadBatch(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(defect, e.Message);
    }

    [Property(MaxTest = 200)]
    public Property MutatedBatchesOnlyEverRaiseFormatException() =>
        Prop.ForAll((from n in Gen.Choose(1, 3)
                     from cut in Gen.Choose(0, 3 * Cifar10.RecordBytes + 5)
                     from at in Gen.Choose(0, 3 * Cifar10.RecordBytes)
                     from value in Gen.Choose(0, 255)
                     select (n, cut, at, value)).ToArbitrary(), t =>
        {
            var b = Records(t.n);
            b[t.at % b.Length] = (byte)t.value;
            if (t.cut < b.Length) b = b[..t.cut];
            try
            {
                var d = Cifar10.Parse(b, "mutated");
                return d.Count * Cifar10.RecordBytes == b.Length;
            }
            catch (FormatException e) { return e.Message.Contains("'mutated'", StringComparison.Ordinal); }
        });
}
