using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Cnn.Cli;
using Cnn.Core;
using Cnn.Core.Filtering;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Tests.Cli;
using Xunit;

namespace Cnn.Tests.Reliability;

/// <summary>
/// Issue 15, the memory parts: every reader checks sizes before allocating, refuses what is not a regular file, and
/// caps what a small file can make it build. The process tests run <c>cnn</c> with the managed heap capped at 500 MB
/// (<c>DOTNET_GCHeapHardLimit</c>), so an unbounded allocation ends the process instead of passing as exit 1.
/// </summary>
[Collection(ConsoleCollection.Name)]
public class MemoryBoundsTests
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cnn-mem-").FullName;

    private string P(params string[] parts) => Path.Combine([_dir, .. parts]);

    private static (int Code, string Out, string Err) Cnn(params string[] args) => CliRunner.Run(args);

    /// <summary>Runs <c>cnn</c> as a process with a 500 MB managed heap; returns the exit code and standard error.</summary>
    private static (int Code, string Err) Bounded(params string[] args)
    {
        var dll = typeof(TrainCommand).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x1F400000";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "cnn did not finish in 2 minutes");
        return (p.ExitCode, err.Result);
    }

    private static void Mkfifo(string path)
    {
        using var p = Process.Start("mkfifo", [path]);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void EndlessAndNonRegularInputsAreRefusedBeforeTheyAreRead()
    {
        if (OperatingSystem.IsWindows()) return;
        Mkfifo(P("fifo"));
        foreach (var path in new[] { "/dev/zero", P("fifo"), _dir })
        {
            var ex = Assert.Throws<CnnException>(() => InputFile.ReadAllBytes(path, "checkpoint"));
            Assert.Contains("expected a regular file", ex.Message);
            Assert.Contains(path, ex.Message);
        }
        Directory.CreateDirectory(P("cifar"));
        File.CreateSymbolicLink(P("cifar", "data_batch_1.bin"), "/dev/zero");
        File.CreateSymbolicLink(P("cifar", "test_batch.bin"), "/dev/zero");
        foreach (var args in new[]
                 {
                     new[] { "params", "--checkpoint", "/dev/zero", "--out", P("p") },
                     new[] { "params", "--checkpoint", P("fifo"), "--out", P("p") },
                     new[] { "summary", "--network", "/dev/zero" },
                     new[] { "train", "--model", "keras-cifar", "--data", "cifar:" + P("cifar"), "--epochs", "1", "--quiet", "--out", P("t") },
                 })
        {
            var (code, err) = Bounded(args);
            Assert.True(code == 1, $"{string.Join(' ', args)}: exit {code}: {err}");
            Assert.Matches("character device|named pipe", err);
            Assert.Single(err.Trim().Split('\n'));
        }
    }

    [Fact]
    public void TheInputCapIsCheckedAgainstTheLengthAndCanBeLowered()
    {
        File.WriteAllBytes(P("ten.bin"), new byte[10]);
        Assert.Equal(10, InputFile.ReadAllBytes(P("ten.bin"), "test file", 10).Length);
        var ex = Assert.Throws<CnnException>(() => InputFile.ReadAllBytes(P("ten.bin"), "test file", 9));
        Assert.Contains("it has 10 bytes; the limit is 9", ex.Message);
        Environment.SetEnvironmentVariable(InputFile.MaxBytesVariable, "5");
        try { Assert.Throws<CnnException>(() => InputFile.ReadAllBytes(P("ten.bin"), "test file")); }
        finally { Environment.SetEnvironmentVariable(InputFile.MaxBytesVariable, null); }
    }

    /// <summary>A PNG of <paramref name="width"/> x <paramref name="height"/> whose data is a few zero bytes: its header is all a reader should trust.</summary>
    private static byte[] ClaimingPng(int width, int height)
    {
        using var ms = new MemoryStream();
        ms.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        void Chunk(string type, byte[] data)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(b, data.Length);
            ms.Write(b);
            var t = Encoding.ASCII.GetBytes(type);
            ms.Write(t);
            ms.Write(data);
            BinaryPrimitives.WriteUInt32BigEndian(b, Crc32([.. t, .. data]));
            ms.Write(b);
        }
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        Chunk("IHDR", ihdr);
        using (var z = new MemoryStream())
        {
            using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true)) zs.Write(new byte[100]);
            Chunk("IDAT", z.ToArray());
        }
        Chunk("IEND", []);
        return ms.ToArray();
    }

    private static uint Crc32(byte[] bytes)
    {
        uint c = 0xffffffffu;
        foreach (var b in bytes)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xffffffffu;
    }

    [Fact]
    public void AnImageIsRefusedByItsHeadersDimensionsBeforeDecoding()
    {
        File.WriteAllBytes(P("claims.png"), ClaimingPng(60000, 60000));
        var (code, err) = Bounded("convolve", "--input", P("claims.png"), "--kernel", "box", "--out", P("c.npy"));
        Assert.Equal(1, code);
        Assert.Contains("60000 x 60000", err);
        Assert.Contains("CNN_MAX_PIXELS", err);
        var (code2, _, err2) = Cnn("gradcam", "--input", P("claims.png"), "--out", P("g.png"));
        Assert.Equal(1, code2);
        Assert.Contains("60000 x 60000", err2);
    }

    [Fact]
    public void ConvolvingALongSignalByItselfIsRefusedBeforeAllocating()
    {
        var x = Tensor.Full(new Shape(1, 3_000_000), 1f);
        var ex = Assert.Throws<ShapeException>(() => ImageFilter.Convolve(x, x));
        Assert.Contains("multiply-adds", ex.Message);
        Npy.Write(P("long.npy"), x);
        var (code, err) = Bounded("convolve", "--input", P("long.npy"), "--kernel", P("long.npy"), "--out", P("y.npy"));
        Assert.Equal(1, code);
        Assert.Contains("multiply-adds", err);
        // Large filters that fit the cap compute without an output x kernel table: a 1 x 100,000 signal with a 1 x 2,001 kernel.
        var s = Tensor.FromArray(Enumerable.Range(0, 100_000).Select(i => (float)(i % 7)).ToArray(), 1, 100_000);
        var k = Tensor.Full(new Shape(1, 2001), 1f);
        var y = ImageFilter.Correlate(s, k, FilterMode.Valid);
        Assert.Equal(98_000, y.Size);
        Assert.Equal(Enumerable.Range(0, 2001).Sum(i => i % 7), y[0]);
    }

    [Fact]
    public void NetworkDescriptionsAreCappedInSizeAndLayers()
    {
        var layer = """{"type":"Relu"}""";
        var json = """{"format":"cnn-dsl-network/1","input":[1,28,28],"strict":false,"layer":{"type":"Serial","name":null,"weightInit":null,"layers":["""
            + string.Join(",", Enumerable.Repeat(layer, NetworkJson.MaxLayers + 1)) + "]}}";
        var ex = Assert.Throws<Cnn.Core.FormatException>(() => NetworkJson.Deserialize(json, "many.json"));
        Assert.Contains("more than 100,000 layers", ex.Message);
        File.WriteAllText(P("huge.json"), new string(' ', (int)NetworkJson.MaxBytes + 1));
        var (code, _, err) = Cnn("summary", "--network", P("huge.json"));
        Assert.Equal(1, code);
        Assert.Contains("CNN_MAX_NETWORK_JSON_BYTES", err);
    }

    [Fact]
    public void ShapeArithmeticThatOverflowsIsAnErrorNamingTheLayer()
    {
        File.WriteAllText(P("big.json"), """{"format":"cnn-dsl-network/1","input":[2147483647,2147483647,2147483647],"strict":false,"layer":{"type":"Relu","name":null,"weightInit":null}}""");
        var (code, _, err) = Cnn("summary", "--network", P("big.json"));
        Assert.Equal(1, code);
        Assert.Contains("big.json", err);
        File.WriteAllText(P("dil.json"), """{"format":"cnn-dsl-network/1","input":[1,64,64],"strict":false,"layer":{"type":"Conv2d","name":"c","weightInit":null,"filters":1,"kernelH":5,"kernelW":3,"strideH":1,"strideW":1,"padH":0,"padW":0,"dilationH":1073741824,"dilationW":1,"groups":1,"useBias":true}}""");
        var (code2, _, err2) = Cnn("summary", "--network", P("dil.json"));
        Assert.Equal(1, code2);
        Assert.Contains("Layer 'c'", err2);
        Assert.Contains("1073741824*(5-1)", err2);
        Assert.Throws<ShapeException>(() => new Shape(int.MaxValue, int.MaxValue, int.MaxValue));
    }

    [Fact]
    public void ASafetensorsHeaderIsCheckedBeforeTheFileIsRead()
    {
        var meta = new Dictionary<string, string> { ["x"] = new string('a', (int)SafeTensors.DefaultMaxHeaderBytes) };
        SafeTensors.Write(P("bigmeta.safetensors"), Parameters.Empty, meta);
        var ex = Assert.Throws<Cnn.Core.FormatException>(() => SafeTensors.Read(P("bigmeta.safetensors")));
        Assert.Contains("exceeds the limit of 16777216 bytes", ex.Message);
        Assert.Contains(SafeTensors.MaxHeaderVariable, ex.Message);
    }

    [Fact]
    public void ForwardInBatchesGivesTheOnePassOutput()
    {
        var net = Zoo.SimpleConvNet();
        var p = Initializer.Init(net, 2);
        var rng = new Random(3);
        var x = Tensor.FromArray(Enumerable.Range(0, 601 * 784).Select(_ => (float)rng.NextDouble()).ToArray(), 601, 1, 28, 28);
        // Equal up to float rounding: the GEMM's blocking, and so its order of sums, depends on the number of rows.
        var (one, batched) = (Apply.Forward(net, p, x).ToArray(), Apply.ForwardInBatches(net, p, x, batchSize: 100).ToArray());
        Assert.Equal(one.Length, batched.Length);
        for (int i = 0; i < one.Length; i++) Assert.True(MathF.Abs(one[i] - batched[i]) <= 1e-5f * (1 + MathF.Abs(one[i])), $"output {i}: {one[i]} vs {batched[i]}");
        Npy.Write(P("x.npy"), Tensor.Zeros(5000, 1, 28, 28));
        var (code, err) = Bounded("forward", "--input", P("x.npy"), "--out", P("y.npy"));
        Assert.True(code == 0, err);
        Assert.Equal(new Shape(5000, 10), Npy.ReadTensor(P("y.npy")).Shape);
    }
}
