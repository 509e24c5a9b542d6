using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Cnn.Cli;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Cnn.Onnx;
using Cnn.Tests.Cli;

namespace Cnn.Tests.Reliability.Fuzz;

/// <summary>
/// The files the generated command lines point at, built once per run in a temporary folder: a few valid inputs (so
/// that some cases do real work) and hostile ones of every kind: empty, truncated, size-lying and huge-claiming files of
/// each format, a FIFO, links to devices, a read-only folder, folders where files are expected and files where folders
/// are, non-UTF-8 and very long names. Nothing under <see cref="Root"/> may change while a case runs, except its own
/// case folder (<see cref="NewCaseFolder"/>).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class HostileCorpus : IDisposable
{
    private int _cases;

    public HostileCorpus()
    {
        Root = Directory.CreateTempSubdirectory("cnn-fuzz-").FullName;
        Inputs = Path.Combine(Root, "corpus");
        Cases = Path.Combine(Root, "cases");
        Directory.CreateDirectory(Inputs);
        Directory.CreateDirectory(Cases);
        Build();
    }

    /// <summary>The run's folder: the corpus and the case folders.</summary>
    public string Root { get; }

    /// <summary>The inputs: read by the cases, never written.</summary>
    public string Inputs { get; }

    /// <summary>The parent of every case's own folder.</summary>
    public string Cases { get; }

    /// <summary>Valid inputs by what they are: the generator offers them to options whose name asks for that.</summary>
    public Dictionary<string, List<string>> Valid { get; } = new(StringComparer.Ordinal);

    /// <summary>Every hostile input path (files, folders, FIFOs, devices, links, missing paths).</summary>
    public List<string> Hostile { get; } = [];

    /// <summary>FIFOs anywhere under <see cref="Root"/> (never read by the snapshot; released by the watchdog).</summary>
    public List<string> Fifos { get; } = [];

    /// <summary>Why the read-only cases cannot show a permission error here, or null when they can.</summary>
    public string? PermissionNote { get; private set; }

    public string P(params string[] parts) => Path.Combine([Inputs, .. parts]);

    private void AddValid(string kind, string path) =>
        (Valid.TryGetValue(kind, out var list) ? list : Valid[kind] = []).Add(path);

    private void Build()
    {
        var net = Zoo.SimpleConvNet();
        var parameters = Initializer.Init(net, 1);
        var rng = new Random(7);

        // Valid inputs.
        var digits = CliRunner.WriteIdxDigits(P("digits"), train: 40, test: 20);
        AddValid("data", "idx:" + digits);
        Directory.CreateDirectory(P("pictures", "zero"));
        Directory.CreateDirectory(P("pictures", "one"));
        for (int i = 0; i < 3; i++)
        {
            File.WriteAllBytes(P("pictures", "zero", $"{i}.png"), Png.Encode(new Raster(30, 20, ((byte)(10 * i), 0, 0))));
            File.WriteAllBytes(P("pictures", "one", $"{i}.png"), Png.Encode(new Raster(20, 30, (255, (byte)(10 * i), 255))));
        }
        AddValid("data", "folder:" + P("pictures"));
        File.WriteAllBytes(P("photo.png"), Png.Encode(new Raster(40, 30, (200, 100, 50))));
        AddValid("image", P("photo.png"));
        Npy.Write(P("x.npy"), Random(rng, 1, 1, 28, 28));
        Npy.Write(P("x4.npy"), Random(rng, 4, 1, 28, 28));
        Npy.Write(P("labels4.npy"), Tensor.FromArray([0, 3, 9, 1], 4));
        Npy.Write(P("signal.npy"), Random(rng, 50));
        Npy.Write(P("kernel.npy"), Random(rng, 3, 3));
        Npy.Write(P("image.npy"), Random(rng, 12, 9));
        foreach (var f in new[] { "x.npy", "x4.npy" }) AddValid("input", P(f));
        AddValid("labels", P("labels4.npy"));
        foreach (var f in new[] { "signal.npy", "kernel.npy", "image.npy", "photo.png" }) AddValid("image", P(f));
        AddValid("kernel", P("kernel.npy"));
        var json = NetworkJson.Serialize(net);
        File.WriteAllText(P("net.json"), json);
        AddValid("network", P("net.json"));
        OnnxExporter.Export(net, parameters, P("model.onnx"));
        AddValid("onnx", P("model.onnx"));
        SafeTensors.Write(P("params.safetensors"), parameters, new Dictionary<string, string> { ["network"] = "simple-convnet" });
        AddValid("checkpoint", P("params.safetensors"));
        var run = P("run");
        var trained = CliRunner.Run("train", "--data", "idx:" + digits, "--limit", "20", "--epochs", "1", "--batch-size", "10", "--out", run, "--quiet");
        if (trained.Code != 0) throw new InvalidOperationException($"the corpus's training run failed: {trained.Err}");
        AddValid("checkpoint", Path.Combine(run, TrainCommand.CheckpointFile));
        AddValid("resume", Path.Combine(run, TrainCommand.CheckpointFile));

        // Empty files of every format, and folders and FIFOs named like files.
        foreach (var ext in new[] { "npy", "safetensors", "onnx", "json", "png", "jpg" })
        {
            Hostile.Add(Write($"empty.{ext}", []));
            Directory.CreateDirectory(P($"folder.{ext}"));
            Hostile.Add(P($"folder.{ext}"));
        }
        foreach (var name in new[] { "fifo.npy", "fifo.safetensors", "fifo.onnx", "fifo.json", "fifo.png" })
        {
            Libc.MakeFifo(P(name));
            Fifos.Add(P(name));
            Hostile.Add(P(name));
        }

        // .npy: size-lying, truncated, overflowing, huge header, object, unknown type.
        Hostile.Add(Write("lying.npy", [.. NpyHeader(1, "<f4", "(1000000, 1000000)"), .. new byte[16]]));
        Hostile.Add(Write("truncated.npy", [.. NpyHeader(1, "<f4", "(1, 1, 28, 28)"), .. new byte[1000]]));
        Hostile.Add(Write("overflow.npy", [.. NpyHeader(1, "<f4", "(4611686018427387904, 4)"), .. new byte[16]]));
        Hostile.Add(Write("negative.npy", [.. NpyHeader(1, "<f4", "(-1, 784)"), .. new byte[16]]));
        Hostile.Add(Write("object.npy", [.. NpyHeader(1, "|O", "(2,)"), .. new byte[16]]));
        Hostile.Add(Write("complex.npy", [.. NpyHeader(1, "<c16", "(2,)"), .. new byte[32]]));
        Hostile.Add(Write("huge-header.npy", [0x93, .. "NUMPY"u8, 2, 0, 0xF0, 0xFF, 0xFF, 0xFF, .. "{'descr'"u8]));
        Hostile.Add(Write("v1-huge-header.npy", [0x93, .. "NUMPY"u8, 1, 0, 0xFF, 0xFF, .. "{'descr'"u8]));
        Hostile.Add(Write("fortran.npy", [.. NpyHeader(1, "<f4", "(1, 1, 28, 28)", fortran: true), .. new byte[784 * 4]]));
        Hostile.Add(Write("nan.npy", [.. NpyHeader(1, "<f4", "(1, 1, 28, 28)"), .. Enumerable.Repeat(new byte[] { 0, 0, 0xC0, 0x7F }, 784).SelectMany(b => b)]));
        Hostile.Add(Write("scalar.npy", [.. NpyHeader(1, "<f4", "()"), 0, 0, 0, 0]));
        Hostile.Add(Write("zero-size.npy", [.. NpyHeader(1, "<f4", "(0, 1, 28, 28)")]));
        Hostile.Add(Write("labels-big.npy", [.. NpyHeader(1, "<i8", "(4,)"), .. BitConverter.GetBytes(long.MaxValue), .. BitConverter.GetBytes(-1L), .. new byte[16]]));

        // safetensors: a header length of 2^62, a header over the cap, tensors claiming 40 GB, a metadata path.
        Hostile.Add(Write("huge-header.safetensors", [.. BitConverter.GetBytes(1L << 62), .. "{}"u8]));
        Hostile.Add(Write("capped-header.safetensors", [.. BitConverter.GetBytes(200_000_001L), .. "{\"a\""u8]));
        Hostile.Add(Write("lying.safetensors", SafeTensorsBytes("{\"conv1/weight\":{\"dtype\":\"F32\",\"shape\":[100000,100000],\"data_offsets\":[0,40000000000]},\"__metadata__\":{\"network\":\"simple-convnet\"}}", [])));
        Hostile.Add(Write("overflow.safetensors", SafeTensorsBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", new byte[16])));
        Hostile.Add(Write("vgg.safetensors", SafeTensorsBytes("{\"__metadata__\":{\"network\":\"vgg16\"}}", [])));
        Hostile.Add(Write("path-meta.safetensors", SafeTensorsBytes("{\"__metadata__\":{\"network\":\"simple-convnet\",\"data\":\"idx:/dev\",\"normalization\":\"../../etc/passwd\",\"classes\":\"\"}}", [])));
        var good = File.ReadAllBytes(P("params.safetensors"));
        Hostile.Add(Write("truncated.safetensors", good[..(good.Length / 2)]));
        var flipped = (byte[])good.Clone();
        for (int i = 8; i < Math.Min(flipped.Length, 200); i += 7) flipped[i] ^= 0x5A;
        Hostile.Add(Write("flipped.safetensors", flipped));

        // ONNX: garbage, truncated, a deep nesting of one field.
        var onnx = File.ReadAllBytes(P("model.onnx"));
        Hostile.Add(Write("truncated.onnx", onnx[..(onnx.Length / 3)]));
        Hostile.Add(Write("garbage.onnx", Bytes(rng, 4096)));
        Hostile.Add(Write("deep.onnx", Enumerable.Repeat(new byte[] { 0x3A, 0x80, 0x80, 0x04 }, 20000).SelectMany(b => b).ToArray()));

        // Network JSON: every integer 2^31 - 1, every integer 65536, deep nesting, not JSON.
        Hostile.Add(Write("huge-dims.json", Encoding.UTF8.GetBytes(Regex.Replace(json, @"(?<=[:\[,])\s*\d+(?=\s*[,\]}])", "2147483647"))));
        Hostile.Add(Write("big-dims.json", Encoding.UTF8.GetBytes(Regex.Replace(json, @"(?<=[:\[,])\s*\d+(?=\s*[,\]}])", "65536"))));
        Hostile.Add(Write("deep.json", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"type\":\"Serial\",\"layers\":[", 5000)))));
        Hostile.Add(Write("not.json", Bytes(rng, 300)));

        // Images: a PNG claiming 60000 x 60000, a truncated one, one named .png that is not.
        Hostile.Add(Write("huge.png", HugePng(60000, 60000)));
        var photo = File.ReadAllBytes(P("photo.png"));
        Hostile.Add(Write("truncated.png", photo[..(photo.Length / 2)]));
        Hostile.Add(Write("text.png", "not a picture"u8.ToArray()));
        Hostile.Add(Write("huge.jpg", HugePng(60000, 60000)));

        // Data folders: IDX claiming 10^6 images (plain and gzip), an image folder with a huge image, CIFAR with a broken batch.
        Directory.CreateDirectory(P("idx-huge"));
        Directory.CreateDirectory(P("idx-huge-gz"));
        foreach (var prefix in new[] { "train", "t10k" })
        {
            var images = Idx(0x803, [1_000_000, 28, 28], new byte[784]);
            var labels = Idx(0x801, [1_000_000], new byte[10]);
            File.WriteAllBytes(P("idx-huge", $"{prefix}-images-idx3-ubyte"), images);
            File.WriteAllBytes(P("idx-huge", $"{prefix}-labels-idx1-ubyte"), labels);
            File.WriteAllBytes(P("idx-huge-gz", $"{prefix}-images-idx3-ubyte.gz"), Gzip(images));
            File.WriteAllBytes(P("idx-huge-gz", $"{prefix}-labels-idx1-ubyte.gz"), Gzip(labels));
        }
        Directory.CreateDirectory(P("idx-empty"));
        foreach (var n in new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" })
            File.WriteAllBytes(P("idx-empty", n), []);
        Directory.CreateDirectory(P("idx-fifo"));
        foreach (var n in new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" })
        {
            Libc.MakeFifo(P("idx-fifo", n));
            Fifos.Add(P("idx-fifo", n));
        }
        Directory.CreateDirectory(P("pictures-huge", "a"));
        Directory.CreateDirectory(P("pictures-huge", "b"));
        File.WriteAllBytes(P("pictures-huge", "a", "huge.png"), HugePng(60000, 60000));
        File.WriteAllBytes(P("pictures-huge", "b", "text.png"), "no"u8.ToArray());
        Directory.CreateDirectory(P("pictures-fifo", "a"));
        Libc.MakeFifo(P("pictures-fifo", "a", "x.png"));
        Fifos.Add(P("pictures-fifo", "a", "x.png"));
        Directory.CreateDirectory(P("pictures-bad-names"));
        Libc.MakeFolder(Encoding.UTF8.GetBytes(P("pictures-bad-names")).Concat(new byte[] { (byte)'/', 0xFF, 0xFE }).ToArray());
        Libc.WriteFile(Encoding.UTF8.GetBytes(P("pictures-bad-names")).Concat(new byte[] { (byte)'/', 0xFF, 0xFE, (byte)'/', 0xC3, 0x28, (byte)'.', (byte)'p', (byte)'n', (byte)'g' }).ToArray(), photo);
        Directory.CreateDirectory(P("cifar-broken"));
        File.WriteAllBytes(P("cifar-broken", "data_batch_1.bin"), Bytes(rng, 3073 + 100));
        File.WriteAllBytes(P("cifar-broken", "test_batch.bin"), []);
        Directory.CreateDirectory(P("cifar-labels"));
        var badLabels = new byte[3073 * 2];
        badLabels[0] = 200;
        File.WriteAllBytes(P("cifar-labels", "data_batch_1.bin"), badLabels);
        File.WriteAllBytes(P("cifar-labels", "test_batch.bin"), badLabels);
        foreach (var d in new[] { "idx-huge", "idx-huge-gz", "idx-empty", "idx-fifo", "pictures-huge", "pictures-fifo", "pictures-bad-names", "cifar-broken", "cifar-labels", "digits", "pictures" })
            Hostile.Add(P(d));

        // The file system: devices (read only), links to them, a link loop, a read-only folder, a file where a folder is
        // expected, non-UTF-8 and very long names, missing paths.
        Hostile.AddRange(["/dev/null", "/dev/zero"]);
        File.CreateSymbolicLink(P("zero.npy"), "/dev/zero");
        File.CreateSymbolicLink(P("null.safetensors"), "/dev/null");
        File.CreateSymbolicLink(P("loop.npy"), P("loop.npy"));
        File.CreateSymbolicLink(P("dangling.onnx"), P("missing", "nothing.onnx"));
        Hostile.AddRange([P("zero.npy"), P("null.safetensors"), P("loop.npy"), P("dangling.onnx")]);
        Directory.CreateDirectory(P("readonly"));
        File.Copy(P("x.npy"), P("readonly", "x.npy"));
        File.SetUnixFileMode(P("readonly"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Hostile.AddRange([P("readonly"), P("readonly", "x.npy"), P("readonly", "missing.npy")]);
        Hostile.Add(Write("plain-file", "a file, not a folder"u8.ToArray()));
        Hostile.Add(P("plain-file", "child.npy"));
        Hostile.Add(P("missing.npy"));
        Hostile.Add(P("missing", "deeper", "x.safetensors"));
        Libc.WriteFile([.. Encoding.UTF8.GetBytes(Inputs + "/"), 0xFF, 0xFE, (byte)'.', (byte)'n', (byte)'p', (byte)'y'], File.ReadAllBytes(P("x.npy")));
        Hostile.Add(P("\uFFFD\uFFFD.npy"));
        Hostile.Add(Write(new string('n', 250) + ".npy", File.ReadAllBytes(P("x.npy"))));
        Hostile.Add(P(new string('l', 300) + ".npy"));
        Hostile.Add(P(string.Concat(Enumerable.Repeat(new string('d', 200) + "/", 25)) + "x.npy"));

        // Root ignores permission bits: say so rather than pretend the read-only cases show a permission error.
        var probe = P("readonly", ".probe");
        try
        {
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
            PermissionNote = "running as root (or with CAP_DAC_OVERRIDE): the read-only folders are writable here, so those cases cannot show a permission error; an unprivileged CI run does";
        }
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>A new, empty folder for one case's outputs, with pre-existing things of every kind to write over or into.</summary>
    public string NewCaseFolder()
    {
        var dir = Path.Combine(Cases, (++_cases).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "existing.npy"), "keep me"u8.ToArray());
        File.WriteAllBytes(Path.Combine(dir, "existing.png"), "keep me"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(dir, "full"));
        File.WriteAllBytes(Path.Combine(dir, "full", "keep.txt"), "keep me"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(dir, "ro"));
        File.SetUnixFileMode(Path.Combine(dir, "ro"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Libc.MakeFifo(Path.Combine(dir, "fifo.npy"));
        return dir;
    }

    /// <summary>Output paths of one case: all inside its case folder.</summary>
    public static string[] OutputChoices(string caseDir) =>
    [
        .. new[] { "out.npy", "out.png", "out.onnx", "out.csv", "out", "out.safetensors", "run", "a/b/c/out.npy", "a/b/run" }.Select(n => Path.Combine(caseDir, n)),
        Path.Combine(caseDir, "existing.npy"), Path.Combine(caseDir, "existing.png"), Path.Combine(caseDir, "full"),
        Path.Combine(caseDir, "ro", "out.npy"), Path.Combine(caseDir, "ro", "run"), Path.Combine(caseDir, "existing.npy", "child.png"),
        Path.Combine(caseDir, "fifo.npy"), Path.Combine(caseDir, new string('o', 300) + ".png"), caseDir + "/", Path.Combine(caseDir, "out\uFFFD.png"),
    ];

    /// <summary>Removes the run's folder with chmod and rm: .NET cannot name the non-UTF-8 entries to delete them.</summary>
    public void Dispose()
    {
        foreach (var (tool, args) in new[] { ("chmod", new[] { "-R", "u+rwx", Root }), ("rm", new[] { "-rf", Root }) })
        {
            var psi = new System.Diagnostics.ProcessStartInfo(tool) { RedirectStandardError = true };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = System.Diagnostics.Process.Start(psi)!;
            p.StandardError.ReadToEnd();
            p.WaitForExit();
        }
    }

    private string Write(string name, byte[] bytes)
    {
        var path = P(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static Tensor Random(Random rng, params int[] shape)
    {
        var values = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = (float)rng.NextDouble();
        return Tensor.FromArray(values, shape);
    }

    private static byte[] Bytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    private static byte[] NpyHeader(int version, string descr, string shape, bool fortran = false)
    {
        var dict = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shape}, }}";
        int prefix = version == 1 ? 10 : 12;
        int total = (prefix + dict.Length + 1 + 63) / 64 * 64;
        var header = dict.PadRight(total - prefix - 1) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.AddRange([(byte)version, 0]);
        if (version == 1) bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        else bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        return [.. bytes];
    }

    private static byte[] SafeTensorsBytes(string header, byte[] data) =>
        [.. BitConverter.GetBytes((long)Encoding.UTF8.GetByteCount(header)), .. Encoding.UTF8.GetBytes(header), .. data];

    private static byte[] Idx(int magic, int[] dims, byte[] data)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        for (int a = 0; a < dims.Length; a++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * a), dims[a]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var m = new MemoryStream();
        using (var z = new GZipStream(m, CompressionLevel.Fastest)) z.Write(data);
        return m.ToArray();
    }

    /// <summary>A PNG whose header claims <paramref name="width"/> x <paramref name="height"/> RGB pixels, with one short row of data.</summary>
    private static byte[] HugePng(int width, int height)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        using var z = new MemoryStream();
        using (var zs = new ZLibStream(z, CompressionLevel.Fastest)) zs.Write(new byte[1000]);
        return [0x89, .. "PNG\r\n\u001a\n"u8, .. Chunk("IHDR", ihdr), .. Chunk("IDAT", z.ToArray()), .. Chunk("IEND", [])];
    }

    private static byte[] Chunk(string type, byte[] data)
    {
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        var b = new byte[8 + data.Length + 4];
        BinaryPrimitives.WriteInt32BigEndian(b, data.Length);
        typed.CopyTo(b, 4);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(8 + data.Length), Crc32(typed));
        return b;
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var x in data)
        {
            crc ^= x;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
