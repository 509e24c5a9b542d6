using System.Buffers.Binary;
using System.Text;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Tests.IO;

public class SafeTensorsTests
{
    private static Gen<Parameters> ParameterSets() =>
        from count in Gen.Choose(0, 4)
        from shapes in Gen.ArrayOf(Gen.Choose(0, 3).SelectMany(rank => Gen.ArrayOf(Gen.Choose(0, 4), rank)), count)
        from seed in Gen.Choose(0, 1000)
        select Parameters.Of(shapes.Select((dims, i) =>
        {
            var s = new Shape(dims);
            var rng = new Random(seed + i);
            var v = Enumerable.Range(0, s.Size).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            return KeyValuePair.Create($"layer{i}/w{(char)('a' + i)}", Tensor.FromArray(v, s));
        }));

    [Property(MaxTest = 100)]
    public Property WriteThenReadIsTheIdentity() =>
        Prop.ForAll(ParameterSets().ToArbitrary(), p =>
        {
            var meta = new Dictionary<string, string> { ["network"] = "simple-convnet", ["epoch"] = "3" };
            var back = SafeTensors.Parse(SafeTensors.ToBytes(p, meta), "mem");
            return back.Tensors.Paths.SequenceEqual(p.Paths)
                && p.Paths.All(k => back.Tensors[k].Shape == p[k].Shape && back.Tensors[k].Span.SequenceEqual(p[k].Span))
                && back.Metadata["epoch"] == "3";
        });

    [Property(MaxTest = 100)]
    public Property TheHeaderIsPaddedToEightBytesAndTheBytesDoNotDependOnInsertionOrder() =>
        Prop.ForAll(ParameterSets().ToArbitrary(), p =>
        {
            var bytes = SafeTensors.ToBytes(p);
            var reversed = SafeTensors.ToBytes(Parameters.Of(p.Entries.Reverse()));
            return BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8 == 0 && bytes.AsSpan().SequenceEqual(reversed);
        });

    /// <summary>Truncations, flipped bytes and overwritten length fields yield our FormatException or a valid file, nothing else.</summary>
    [Property(MaxTest = 300)]
    public Property MutatedBytesNeverEscapeAsAnotherException() =>
        Prop.ForAll((from p in ParameterSets().Where(p => p.Count > 0)
                     from kind in Gen.Choose(0, 2)
                     from pos in Gen.Choose(0, 10_000)
                     from value in Gen.Choose(0, 255)
                     select (p, kind, pos, value)).ToArbitrary(), t =>
        {
            var bytes = SafeTensors.ToBytes(t.p);
            int at = t.pos % bytes.Length;
            byte[] mutated = t.kind switch
            {
                0 => bytes[..at],
                1 => bytes.Select((b, i) => i == at ? (byte)t.value : b).ToArray(),
                _ => WithHeaderLength(bytes, (ulong)t.value << (t.pos % 57)),
            };
            try { SafeTensors.Parse(mutated, "mutated"); return true; }
            catch (FormatException e) { return e.Message.Contains("'mutated'", StringComparison.Ordinal); }
        });

    private static byte[] WithHeaderLength(byte[] bytes, ulong n)
    {
        var copy = (byte[])bytes.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(copy, n);
        return copy;
    }

    private static byte[] File(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)h.Length);
        h.CopyTo(b, 8);
        return b;
    }

    [Theory]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 12, "starts at 4")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, "cover 8")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647],\"data_offsets\":[0,8]}}", 8, "too large")]
    [InlineData("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "only F32")]
    [InlineData("{\"__metadata__\":{\"x\":1}}", 0, "not a string")]
    [InlineData("[1,2]", 0, "not a JSON object")]
    public void HostileFilesAreRejectedWithTheReason(string header, int dataBytes, string reason)
    {
        var e = Assert.Throws<FormatException>(() => SafeTensors.Parse(File(header, dataBytes), "hostile.safetensors"));
        Assert.Contains(reason, e.Message);
        Assert.Contains("hostile.safetensors", e.Message);
    }

    [Fact]
    public void AHugeHeaderLengthIsRejectedBeforeAnyAllocation()
    {
        var b = new byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(b, ulong.MaxValue);
        Assert.Contains("exceeds the limit", Assert.Throws<FormatException>(() => SafeTensors.Parse(b, "x")).Message);
        BinaryPrimitives.WriteUInt64LittleEndian(b, 1000);
        Assert.Contains("past the end", Assert.Throws<FormatException>(() => SafeTensors.Parse(b, "x")).Message);
    }

    [Fact]
    public void WriteReplacesTheTargetAtomicallyAndLeavesNoTemporaryFile()
    {
        var dir = Directory.CreateTempSubdirectory("cnn-st-").FullName;
        var path = Path.Combine(dir, "ckpt.safetensors");
        var p = Parameters.Of(new[] { KeyValuePair.Create("w", Tensor.FromArray(new[] { 1f, 2f }, 2)) });
        SafeTensors.Write(path, p);
        SafeTensors.Write(path, p.With("w", Tensor.FromArray(new[] { 3f, 4f }, 2)));
        Assert.Equal(new[] { 3f, 4f }, SafeTensors.Read(path).Tensors["w"].ToArray());
        Assert.Single(Directory.GetFiles(dir));
    }
}
