using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Cnn.Core;
using Cnn.Dsl.IO;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.IO;

public sealed class NpyTests
{
    private static readonly NpyType[] WritableTypes =
        [NpyType.Float32, NpyType.Float64, NpyType.Int32, NpyType.Int64, NpyType.UInt8, NpyType.Int8, NpyType.Int16, NpyType.UInt16, NpyType.UInt32, NpyType.Bool];

    private static Gen<NpyArray> Arrays() =>
        from type in Gen.Elements(WritableTypes)
        from rank in Gen.Choose(0, 4)
        from dims in Gen.ArrayOf(Gen.Choose(0, 5), rank)
        from seed in Gen.Choose(0, 100_000)
        select Make(type, new Shape(dims), seed);

    private static NpyArray Make(NpyType type, Shape shape, int seed)
    {
        var rng = new Random(seed);
        if (type is NpyType.Float32 or NpyType.Float64)
        {
            var t = Tensor.FromArray(Enumerable.Range(0, shape.Size).Select(_ => (float)(rng.NextDouble() * 200 - 100)).ToArray(), shape);
            return type == NpyType.Float32 ? NpyArray.FromTensor(t) : Npy.Parse(Float64File(t), "f8");
        }
        var (min, max) = type switch
        {
            NpyType.Bool => (0L, 1L), NpyType.Int8 => (-128L, 127L), NpyType.UInt8 => (0L, 255L), NpyType.Int16 => (-32768L, 32767L),
            NpyType.UInt16 => (0L, 65535L), NpyType.UInt32 => (0L, uint.MaxValue), NpyType.Int32 => (int.MinValue, int.MaxValue),
            _ => (long.MinValue / 2, long.MaxValue / 2),
        };
        var v = Enumerable.Range(0, shape.Size).Select(_ => rng.NextInt64(min, max) + (rng.Next(2) == 0 ? 0 : 1)).Select(x => Math.Min(x, max)).ToArray();
        return NpyArray.FromIntegers(type, v, shape);
    }

    /// <summary>The writer emits float64 only for arrays read as float64, so such arrays come from a hand-made file.</summary>
    private static byte[] Float64File(Tensor t)
    {
        var data = new byte[t.Size * 8];
        for (int i = 0; i < t.Size; i++) BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(i * 8), t[i]);
        return FileOf(1, Dict("<f8", false, t.Shape.ToArray()), data);
    }

    private static string Dict(string descr, bool fortran, int[] shape) =>
        $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': ({string.Join(", ", shape)}{(shape.Length == 1 ? "," : "")}), }}";

    /// <summary>A .npy file made by hand: magic, version, header length of the version's width, header (padded), data.</summary>
    private static byte[] FileOf(int major, string header, byte[] data, bool pad = true)
    {
        int prefix = major == 1 ? 10 : 12;
        if (pad) header += new string(' ', (64 - (prefix + header.Length + 1) % 64) % 64) + "\n";
        var h = major == 3 ? Encoding.UTF8.GetBytes(header) : Encoding.Latin1.GetBytes(header);
        var b = new byte[prefix + h.Length + data.Length];
        new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 }.CopyTo(b, 0);
        if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(8), (ushort)h.Length);
        else BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), (uint)h.Length);
        h.CopyTo(b, prefix);
        data.CopyTo(b, prefix + h.Length);
        return b;
    }

    private static bool SameContent(NpyArray a, NpyArray b)
    {
        if (a.Type != b.Type || a.Shape != b.Shape || a.IsInteger != b.IsInteger) return false;
        for (int i = 0; i < a.Size; i++) if (a[i] != b[i]) return false;
        return true;
    }

    [Property(MaxTest = 200)]
    public Property WriteThenReadIsTheIdentityAndThePrefixIsAlignedTo64() =>
        Prop.ForAll(Arrays().ToArbitrary(), a =>
        {
            var bytes = Npy.ToBytes(a);
            int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
            return SameContent(a, Npy.Parse(bytes, "mem")) && (10 + headerLength) % 64 == 0 && bytes[10 + headerLength - 1] == '\n';
        });

    [Fact]
    public void FilesRoundTripThroughTheDiskAndTheWriteIsAtomic()
    {
        var dir = Directory.CreateTempSubdirectory("npy");
        try
        {
            var path = Path.Combine(dir.FullName, "x.npy");
            var t = Tensor.FromArray([1.5f, -2, 3, 4, 5, float.NaN], 2, 3);
            Npy.Write(path, t);
            var back = Npy.ReadTensor(path);
            Assert.Equal(t.Shape, back.Shape);
            Assert.Equal(t.ToArray(), back.ToArray());
            Npy.Write(path, NpyArray.FromInt32([7, -8], new Shape(2)));
            Assert.Equal([7, -8], Npy.Read(path).ToInt32());
            Assert.Single(Directory.GetFiles(dir.FullName)); // no temporary file left behind
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void AScalarHasRankZeroAndTheExactHeaderNumPyWrites()
    {
        var bytes = Npy.ToBytes(NpyArray.FromTensor(Tensor.FromArray([42f], Array.Empty<int>())));
        Assert.Equal("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", Encoding.ASCII.GetString(bytes, 10, 55));
        var back = Npy.Parse(bytes, "scalar");
        Assert.Equal(0, back.Shape.Rank);
        Assert.Equal(42.0, back[0]);
        Assert.Contains("'shape': (3,), }", Encoding.ASCII.GetString(Npy.ToBytes(NpyArray.FromInt32([1, 2, 3], new Shape(3)))));
    }

    [Fact]
    public void BigEndianFilesAreRead()
    {
        var f = new byte[8];
        BinaryPrimitives.WriteSingleBigEndian(f, 1.25f);
        BinaryPrimitives.WriteSingleBigEndian(f.AsSpan(4), -3f);
        Assert.Equal([1.25f, -3f], Npy.Parse(FileOf(1, Dict(">f4", false, [2]), f), "be").ToTensor().ToArray());
        var i = new byte[16];
        BinaryPrimitives.WriteInt64BigEndian(i, -5);
        BinaryPrimitives.WriteInt64BigEndian(i.AsSpan(8), 1L << 40);
        Assert.Equal([-5L, 1L << 40], Npy.Parse(FileOf(1, Dict(">i8", false, [2]), i), "be").ToInt64());
        var s = new byte[4];
        BinaryPrimitives.WriteInt16BigEndian(s, -2);
        BinaryPrimitives.WriteUInt16BigEndian(s.AsSpan(2), 65535);
        Assert.Equal([-2L], Npy.Parse(FileOf(1, Dict(">i2", false, [1]), s[..2]), "be").ToInt64());
        Assert.Equal([65535L], Npy.Parse(FileOf(1, Dict(">u2", false, [1]), s[2..]), "be").ToInt64());
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Versions2And3AreRead(int major)
    {
        var data = new byte[12];
        for (int k = 0; k < 3; k++) BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(4 * k), k - 1);
        var a = Npy.Parse(FileOf(major, "{'shape': (3,), 'descr': '<i4', 'fortran_order': False}", data), "v" + major);
        Assert.Equal([-1, 0, 1], a.ToInt32());
    }

    [Fact]
    public void FortranOrderIsTransposedToRowMajor()
    {
        // A 2x3 array [[1,2,3],[4,5,6]] stored column-major: 1 4 2 5 3 6.
        var col = new[] { 1f, 4, 2, 5, 3, 6 };
        var data = new byte[24];
        for (int k = 0; k < 6; k++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * k), col[k]);
        var a = Npy.Parse(FileOf(1, Dict("<f4", true, [2, 3]), data), "f");
        Assert.Equal(new Shape(2, 3), a.Shape);
        Assert.Equal([1f, 2, 3, 4, 5, 6], a.ToTensor().ToArray());
        // 2x2x2 of int64 with value 100a + 10b + c stored with the first index fastest.
        var ints = new byte[64];
        int n = 0;
        for (int c = 0; c < 2; c++)
            for (int b = 0; b < 2; b++)
                for (int a0 = 0; a0 < 2; a0++)
                    BinaryPrimitives.WriteInt64LittleEndian(ints.AsSpan(8 * n++), 100 * a0 + 10 * b + c);
        Assert.Equal([0L, 1, 10, 11, 100, 101, 110, 111], Npy.Parse(FileOf(1, Dict("<i8", true, [2, 2, 2]), ints), "f3").ToInt64());
    }

    public static TheoryData<string, byte[], string> Hostile()
    {
        var four = new byte[4];
        var d = new TheoryData<string, byte[], string>
        {
            { "short", new byte[] { 0x93, (byte)'N', (byte)'U' }, "fewer than the 10-byte prefix" },
            { "magic", Encoding.ASCII.GetBytes("PK\x03\x04 not numpy at all"), "magic" },
            { "version 4", Patch(FileOf(1, Dict("<f4", false, [1]), four), 6, 4), "version 4.0" },
            { "version 1.1", Patch(FileOf(1, Dict("<f4", false, [1]), four), 7, 1), "version 1.1" },
            // The 12-byte file whose version-2 header length says 4 GiB: rejected before anything is allocated.
            { "4 GiB header", new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0, 0xff, 0xff, 0xff, 0xff }, "exceeds the limit" },
            { "header past end", FileOf(1, Dict("<f4", false, [1]), four)[..40], "runs past the end" },
            { "huge header", FileOf(2, Dict("<f4", false, [1]) + new string(' ', 20_000), four), "exceeds the limit of 10000" },
            { "object", FileOf(1, Dict("|O", false, [1]), new byte[8]), "object array" },
            { "complex", FileOf(1, Dict("<c8", false, [1]), new byte[8]), "not supported" },
            { "no byte order", FileOf(1, Dict("|f4", false, [1]), four), "byte order" },
            { "structured", FileOf(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", four), "structured" },
            { "product overflow", FileOf(1, Dict("<f4", false, [2147483647, 2147483647, 4]), four), "more than" },
            { "dim too large", FileOf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", four), "exceeds" },
            { "lies about size", FileOf(1, Dict("<f4", false, [1_000_000]), four), "needs 4000000 data bytes" },
            { "trailing bytes", FileOf(1, Dict("<f4", false, [1]), new byte[5]), "needs 4 data bytes" },
            { "truncated data", FileOf(1, Dict("<f8", false, [2]), new byte[12]), "needs 16 data bytes" },
            { "negative dim", FileOf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", four), "negative" },
            { "missing key", FileOf(1, "{'descr': '<f4', 'shape': (1,), }", four), "lacks the key 'fortran_order'" },
            { "extra key", FileOf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", four), "unexpected key 'x'" },
            { "duplicate key", FileOf(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", four), "appears twice" },
            { "fortran not bool", FileOf(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", four), "fortran_order" },
            { "shape is a list", FileOf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", four), "not a tuple" },
            { "shape (1) is an int", FileOf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", four), "not a tuple" },
            { "not a dict", FileOf(1, "[1, 2, 3]", four), "not a dict" },
            { "code", FileOf(1, "__import__('os').system('true')", four), "not a Python dict literal" },
            { "unclosed", FileOf(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,", four), "not a Python dict literal" },
            { "bad utf-8", FileOf(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", four) is var v3 ? Patch(v3, 13, 0xff) : v3, "not UTF-8" },
            { "bool of 2", FileOf(1, Dict("|b1", false, [1]), new byte[] { 2 }), "not 0 or 1" },
        };
        return d;
    }

    private static byte[] Patch(byte[] b, int at, byte value)
    {
        var c = (byte[])b.Clone();
        c[at] = value;
        return c;
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void HostileFilesAreRejectedNamingTheFileAndTheDefect(string name, byte[] bytes, string defect)
    {
        var e = Assert.Throws<FormatException>(() => Npy.Parse(bytes, name + ".npy"));
        Assert.Contains($"'{name}.npy'", e.Message);
        Assert.Contains(defect, e.Message);
    }

    [Fact]
    public void AHostileFileOnDiskIsRejectedWithItsPath()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}.npy");
        File.WriteAllBytes(path, FileOf(1, Dict("<f4", false, [1_000_000_000]), new byte[4]));
        try { Assert.Contains(path, Assert.Throws<FormatException>(() => Npy.Read(path)).Message); }
        finally { File.Delete(path); }
    }

    /// <summary>Truncations, flipped bytes and overwritten header lengths give our FormatException or a valid array, nothing else.</summary>
    [Property(MaxTest = 400)]
    public Property MutatedFilesNeverEscapeAsAnotherException() =>
        Prop.ForAll((from a in Arrays()
                     from kind in Gen.Choose(0, 3)
                     from pos in Gen.Choose(0, 100_000)
                     from value in Gen.Choose(0, 255)
                     select (a, kind, pos, value)).ToArbitrary(), t =>
        {
            var bytes = Npy.ToBytes(t.a);
            int at = t.pos % bytes.Length;
            int headerEnd = 10 + BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
            byte[] mutated = t.kind switch
            {
                0 => bytes[..at],
                1 => Patch(bytes, at, (byte)t.value),
                2 => Patch(bytes, 10 + t.pos % Math.Max(1, headerEnd - 10), (byte)t.value), // inside the header text
                _ => Patch(Patch(bytes, 8, (byte)t.value), 9, (byte)(t.pos & 0xff)),
            };
            try { Npy.Parse(mutated, "mutated"); return true; }
            catch (FormatException e) { return e.Message.Contains("'mutated'", StringComparison.Ordinal); }
        });

    [Fact]
    public void IntegerAccessorsRejectFloatsAndValuesThatDoNotFit()
    {
        Assert.Throws<CnnException>(() => NpyArray.FromTensor(Tensor.Zeros(2)).ToInt32("labels"));
        var big = NpyArray.FromIntegers(NpyType.Int64, [1L << 40], new Shape(1));
        Assert.Contains("32 bits", Assert.Throws<CnnException>(() => big.ToInt32()).Message);
        Assert.Throws<CnnException>(() => NpyArray.FromIntegers(NpyType.UInt8, [256L], new Shape(1)));
    }

    private const string NumpySkip = "python3 with numpy is not installed (apt-get install python3-numpy): the NumPy interop test is skipped";

    /// <summary>Runs only where python3 can import numpy; elsewhere it shows as skipped, with the reason.</summary>
    public sealed class NumpyFactAttribute : FactAttribute
    {
        public NumpyFactAttribute()
        {
            if (Python.Value is null) Skip = NumpySkip;
        }
    }

    /// <summary>The first Python that can import numpy: the one on the PATH, else Debian's (a pyenv shim may shadow it).</summary>
    private static readonly Lazy<string?> Python = new(() =>
        new[] { "python3", "/usr/bin/python3" }.FirstOrDefault(p => RunPython(p, "import numpy", out _) == 0));

    private static int RunPython(string script, out string output) => RunPython(Python.Value!, script, out output);

    private static int RunPython(string python, string script, out string output)
    {
        try
        {
            var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(script);
            using var p = Process.Start(psi)!;
            p.StandardInput.Close();
            var err = p.StandardError.ReadToEndAsync();
            output = p.StandardOutput.ReadToEnd() + err.Result;
            p.WaitForExit();
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            output = e.Message;
            return -1;
        }
    }

    [NumpyFact]
    public void FilesWrittenByNumPyAreReadAndOursAreReadByNumPy()
    {
        var dir = Directory.CreateTempSubdirectory("npy-numpy");
        try
        {
            string d = dir.FullName;
            var script = $$"""
                import numpy as np
                d = {{"'" + d + "'"}}
                a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8 - 1
                np.save(d + '/f4.npy', a)
                np.save(d + '/f4be.npy', a.astype('>f4'))
                np.save(d + '/f4fortran.npy', np.asfortranarray(a))
                np.save(d + '/f8.npy', a.astype(np.float64))
                np.save(d + '/i8.npy', np.array([[-3, 2**40], [7, 0]], dtype=np.int64))
                np.save(d + '/i4.npy', np.array([5, -6, 7], dtype=np.int32))
                np.save(d + '/u1.npy', np.array([[0, 255]], dtype=np.uint8))
                np.save(d + '/scalar.npy', np.float32(2.5))
                np.save(d + '/empty.npy', np.zeros((0, 3), dtype=np.float32))
                """;
            Assert.True(RunPython(script, out var o) == 0, o);
            var expected = Enumerable.Range(0, 24).Select(i => i / 8f - 1).ToArray();
            foreach (var name in new[] { "f4", "f4be", "f4fortran", "f8" })
            {
                var a = Npy.Read(Path.Combine(d, name + ".npy"));
                Assert.Equal(new Shape(2, 3, 4), a.Shape);
                Assert.Equal(expected, a.ToTensor().ToArray());
            }
            Assert.Equal([-3L, 1L << 40, 7, 0], Npy.Read(Path.Combine(d, "i8.npy")).ToInt64());
            Assert.Equal([5, -6, 7], Npy.Read(Path.Combine(d, "i4.npy")).ToInt32());
            Assert.Equal(NpyType.UInt8, Npy.Read(Path.Combine(d, "u1.npy")).Type);
            Assert.Equal([0L, 255], Npy.Read(Path.Combine(d, "u1.npy")).ToInt64());
            Assert.Equal(2.5, Npy.Read(Path.Combine(d, "scalar.npy"))[0]);
            Assert.Equal(new Shape(0, 3), Npy.Read(Path.Combine(d, "empty.npy")).Shape);

            Npy.Write(Path.Combine(d, "ours_f4.npy"), Tensor.FromArray(expected, 2, 3, 4));
            Npy.Write(Path.Combine(d, "ours_i4.npy"), NpyArray.FromInt32([1, -2], new Shape(2)));
            Npy.Write(Path.Combine(d, "ours_u1.npy"), NpyArray.FromIntegers(NpyType.UInt8, [0L, 200], new Shape(1, 2)));
            Npy.Write(Path.Combine(d, "ours_i8.npy"), NpyArray.FromIntegers(NpyType.Int64, [-(1L << 50)], new Shape()));
            var check = $$"""
                import numpy as np
                d = {{"'" + d + "'"}}
                a = np.load(d + '/ours_f4.npy', allow_pickle=False)
                assert a.dtype == np.float32 and a.shape == (2, 3, 4), (a.dtype, a.shape)
                assert (a == np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8 - 1).all()
                b = np.load(d + '/ours_i4.npy', allow_pickle=False)
                assert b.dtype == np.int32 and b.tolist() == [1, -2]
                c = np.load(d + '/ours_u1.npy', allow_pickle=False)
                assert c.dtype == np.uint8 and c.tolist() == [[0, 200]]
                e = np.load(d + '/ours_i8.npy', allow_pickle=False)
                assert e.dtype == np.int64 and e.shape == () and int(e) == -(2**50)
                print('ok')
                """;
            Assert.True(RunPython(check, out var o2) == 0, o2);
        }
        finally { dir.Delete(true); }
    }
}
