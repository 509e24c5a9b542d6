using System.Text.Json;
using Cnn.Cli;
using Cnn.Cli.Pictures;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using SkiaSharp;
using Xunit;
using Model = Cnn.Cli.Model;

namespace Cnn.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class CliCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-cli");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static (int Code, string Out, string Err) Cnn(string line) => CliRunner.Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [Theory]
    [InlineData("train --epochs zero", "cnn train: --epochs expects an integer from 1 to 100000; found 'zero'", "usage: cnn train")]
    [InlineData("train --optimizer rmsprob", "cnn train: --optimizer expects one of sgd, momentum, nesterov, adam, adamw, rmsprop; found 'rmsprob'", "usage: cnn train")]
    [InlineData("train --model nope", "cnn train: --model: unknown network 'nope'", "usage: cnn train")]
    [InlineData("train --quiet --json", "cnn train: --quiet and --json exclude each other", "usage: cnn train")]
    [InlineData("train --bogus 1", "cnn train: unknown option '--bogus'", "usage: cnn train")]
    [InlineData("train --data ftp:x", "cnn train: --data expects mnist, fashion-mnist, idx:DIR, cifar:DIR or folder:DIR; found 'ftp:x'", "usage: cnn train")]
    [InlineData("convolve --kernel box --out x.png", "cnn convolve: --input is required", "usage: cnn convolve")]
    [InlineData("convolve --input a.npy --kernel gauss --out x.png", "cnn convolve: --kernel expects laplacian", "usage: cnn convolve")]
    [InlineData("convolve --input a.npy --kernel box --out x.bmp", "cnn convolve: --out must end in .npy or .png", "usage: cnn convolve")]
    [InlineData("convolve --input a.npy --kernel box --out x.npy --boundary mirror", "cnn convolve: --boundary expects one of", "usage: cnn convolve")]
    [InlineData("show", "cnn show: --checkpoint is required", "usage: cnn show")]
    [InlineData("params --model lenet5", "cnn params: --out is required", "usage: cnn params")]
    [InlineData("forward --input x.npy --out y.npy --mode test", "cnn forward: --mode expects one of eval, train", "usage: cnn forward")]
    [InlineData("grad --input x.npy --out d", "cnn grad: --labels is required", "usage: cnn grad")]
    [InlineData("summary --model", "cnn summary: option --model needs a value", "usage: cnn summary")]
    [InlineData("summary --model nope", "cnn summary: --model: unknown network 'nope'", "usage: cnn summary")]
    [InlineData("frobnicate", "cnn: unknown command 'frobnicate'", "usage: cnn <command>")]
    public void AWrongArgumentGivesOneLineThenTheUsageLineAndExitCode2(string line, string message, string usage)
    {
        var (code, output, err) = Cnn(line);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        var lines = err.TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.StartsWith(message, lines[0]);
        Assert.StartsWith(usage, lines[1]);
        Assert.Contains("--help", lines[1]);
    }

    [Fact]
    public void UserErrorsExitWith1AndSayWhatIsWrong()
    {
        var missing = Cnn($"forward --checkpoint {P("none.safetensors")} --input x.npy --out y.npy");
        Assert.Equal(1, missing.Code);
        Assert.Contains("none.safetensors", missing.Err);
        File.WriteAllBytes(P("bad.npy"), [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 9, 0, 0, 0, 0, 0]);
        var bad = Cnn($"forward --model simple-convnet --input {P("bad.npy")} --out {P("y.npy")}");
        Assert.Equal(1, bad.Code);
        Assert.Contains("version 9.0", bad.Err);
        Npy.Write(P("x.npy"), Tensor.Zeros(2, 3));
        var shape = Cnn($"forward --model simple-convnet --input {P("x.npy")} --out {P("y.npy")}");
        Assert.Equal(1, shape.Code);
        Assert.Contains("[N, 1, 28, 28]", shape.Err);
    }

    [Fact]
    public void TrainFillsTheRunFolderAndShowRedrawsItsPictures()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"));
        var run = P("run");
        var (code, output, err) = Cnn($"train --data idx:{data} --epochs 2 --batch-size 20 --lr 0.002 --out {run}");
        Assert.True(code == 0, err);
        Assert.Contains("Epoch 2/2\n", output);
        Assert.Contains(" - val_loss: ", output);
        foreach (var f in new[] { "checkpoint.safetensors", "metrics.csv", "summary.txt", "loss.png", "accuracy.png", "filters-initial.png", "filters-final.png",
                                   "input.png", "features-conv1.png", "confusion.png" })
            Assert.True(File.Exists(Path.Combine(run, f)), f);
        var rows = EpochRow.ReadCsv(Path.Combine(run, "metrics.csv"));
        Assert.Equal([1, 2], rows.Select(r => r.Epoch));
        Assert.True(rows[1].ValidationAccuracy > 0.3, $"a bar per class is easy: validation accuracy {rows[1].ValidationAccuracy}");

        // The checkpoint names its network and holds parameters, state and optimizer slots.
        var model = Model.Load(Path.Combine(run, "checkpoint.safetensors"));
        Assert.Equal("simple-convnet", model.Name);
        Assert.Equal($"idx:{data}", model.Metadata["data"]);
        Assert.Equal(3, Checkpoint.Load(Path.Combine(run, "checkpoint.safetensors")).Epoch);

        // Trained first-layer filters differ from the initial ones, tile by tile.
        // The file is the figure of the checkpoint's filters; its tiles sit where the figure placed the grid.
        using var figure = NetworkPictures.Filters(model.Network, model.Parameters, "final")!.Draw();
        var grid = LayerGrid.Layout(30, 5, 5);
        var body = figure.Images[0];
        using var before = SKBitmap.Decode(Path.Combine(run, "filters-initial.png"));
        using var after = SKBitmap.Decode(Path.Combine(run, "filters-final.png"));
        Assert.Equal((figure.Bitmap.Width, figure.Bitmap.Height), (after.Width, after.Height));
        Assert.Equal((grid.Width, grid.Height), (body.Width, body.Height));
        int changedTiles = Enumerable.Range(0, 30).Count(i =>
        {
            var (x, y) = grid.Origin(i);
            (x, y) = (x + body.Left, y + body.Top);
            return Enumerable.Range(0, 25).Any(k => before.GetPixel(x + k % 5 * grid.Scale, y + k / 5 * grid.Scale) != after.GetPixel(x + k % 5 * grid.Scale, y + k / 5 * grid.Scale));
        });
        Assert.True(changedTiles >= 25, $"only {changedTiles} of 30 filters changed in training");

        // A non-empty run folder is never overwritten without --force.
        var again = Cnn($"train --data idx:{data} --epochs 1 --out {run}");
        Assert.Equal(1, again.Code);
        Assert.Contains("--force", again.Err);

        // The data is named by the user: show reads no path from the checkpoint's metadata (issue 15).
        var shown = Cnn($"show --checkpoint {Path.Combine(run, "checkpoint.safetensors")} --data idx:{data} --out {P("shown")}");
        Assert.True(shown.Code == 0, shown.Err);
        foreach (var f in new[] { "filters-checkpoint.png", "input.png", "features-conv1.png", "confusion.png", "loss.png", "accuracy.png" })
            Assert.True(File.Exists(P("shown", f)), f);
        // The same parameters make the same filter tiles (the titles differ: "final", "checkpoint").
        using (var shownFilters = SKBitmap.Decode(P("shown", "filters-checkpoint.png")))
            for (int y = body.Top; y < body.Bottom; y++)
                for (int x = body.Left; x < body.Right; x++)
                    Assert.Equal(after.GetPixel(x, y), shownFilters.GetPixel(x, y));
        var filtersOnly = Cnn($"show --checkpoint {Path.Combine(run, "checkpoint.safetensors")} --data none --out {P("filters-only")}");
        Assert.Equal(0, filtersOnly.Code);
        Assert.Equal(["accuracy.png", "filters-checkpoint.png", "loss.png"], Directory.GetFiles(P("filters-only")).Select(f => Path.GetFileName(f)).Order().ToArray());
    }

    /// <summary>AdamW and RMSprop train from the command line, and their checkpoint carries their own slots.</summary>
    [Theory]
    [InlineData("adamw", "opt/m/")]
    [InlineData("rmsprop", "opt/square_avg/")]
    public void AdamWAndRmsPropTrain(string optimizer, string slot)
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 100, test: 20);
        var run = Cnn($"train --data idx:{data} --epochs 1 --batch-size 25 --optimizer {optimizer} --quiet --out {P(optimizer)}");
        Assert.True(run.Code == 0, run.Err);
        var names = SafeTensors.Read(P(optimizer, "checkpoint.safetensors")).Tensors.Paths;
        Assert.Contains(names, n => n.StartsWith(slot, StringComparison.Ordinal));
    }

    /// <summary>
    /// The networks that adapt to their input train on 1x28x28 digits (resnet-mini's documentation says they fit; it used
    /// to fail with a shape error), and the checkpoint carries the network as built, so <c>forward</c> runs it.
    /// </summary>
    [Theory]
    [InlineData("resnet-mini")]
    [InlineData("inception-mini")]
    [InlineData("inception-mini-aux")]
    public void NetworksThatAdaptToTheirInputTrainOnDigitsAndTheirCheckpointRuns(string model)
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 40, test: 10);
        var run = Cnn($"train --model {model} --data idx:{data} --epochs 1 --batch-size 20 --quiet --out {P(model)}");
        Assert.True(run.Code == 0, run.Err);
        var cp = Checkpoint.Load(P(model, "checkpoint.safetensors"));
        Assert.Equal(new Shape(1, 28, 28), NetworkJson.Deserialize(cp.Metadata["network_json"], "test").InputShape);
        Npy.Write(P("x.npy"), Tensor.Zeros(2, 1, 28, 28));
        var forward = Cnn($"forward --checkpoint {P(model, "checkpoint.safetensors")} --input {P("x.npy")} --out {P(model + ".npy")}");
        Assert.True(forward.Code == 0, forward.Err);
        Assert.Equal(new Shape(2, 10), Npy.ReadTensor(P(model + ".npy")).Shape);
    }

    /// <summary>Export of a network with auxiliary heads says that it leaves them out: inference uses the main head.</summary>
    [Fact]
    public void ExportSaysItLeavesTheAuxiliaryHeadsOut()
    {
        var run = Cnn($"export --model inception-mini-aux --out {P("aux.onnx")}");
        Assert.True(run.Code == 0, run.Err);
        Assert.Contains("2 auxiliary heads left out: inference uses the main head", run.Out);
        var plain = Cnn($"export --model inception-mini --out {P("plain.onnx")}");
        Assert.True(plain.Code == 0, plain.Err);
        Assert.DoesNotContain("auxiliary", plain.Out);
    }

    [Fact]
    public void JsonModePrintsOneObjectPerLineAndAugmentedRunsResumeExactly()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 100, test: 20);
        var full = Cnn($"train --data idx:{data} --epochs 2 --batch-size 25 --augment --normalize --json --out {P("full")}");
        Assert.True(full.Code == 0, full.Err);
        var events = full.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["epoch", "epoch", "done"], events.Select(e => e.GetProperty("event").GetString()));
        Assert.False(events[2].GetProperty("interrupted").GetBoolean());
        Assert.InRange(events[1].GetProperty("val_accuracy").GetDouble(), 0, 1);
        // One figure has one text in every event: the last epoch's and the final event's are the same digits (issue 21).
        foreach (var key in new[] { "val_loss", "val_accuracy" })
        {
            Assert.Equal(events[1].GetProperty(key).GetRawText(), events[2].GetProperty(key).GetRawText());
            Assert.Equal(Numbers.Shortest(events[1].GetProperty(key).GetSingle()), events[2].GetProperty(key).GetRawText());
        }

        var first = Cnn($"train --data idx:{data} --epochs 1 --batch-size 25 --augment --normalize --quiet --out {P("resumed")}");
        Assert.Equal(0, first.Code);
        Assert.Equal("", first.Out);
        var second = Cnn($"train --data idx:{data} --epochs 2 --batch-size 25 --augment --quiet --resume {P("resumed", "checkpoint.safetensors")}");
        Assert.True(second.Code == 0, second.Err);
        var a = Checkpoint.Load(P("full", "checkpoint.safetensors"));
        var b = Checkpoint.Load(P("resumed", "checkpoint.safetensors"));
        Assert.Equal(a.Parameters.Paths, b.Parameters.Paths);
        foreach (var path in a.Parameters.Paths) Assert.True(a.Parameters[path].Span.SequenceEqual(b.Parameters[path].Span), path);
        Assert.Equal(a.Metadata["normalization"], b.Metadata["normalization"]);
        Assert.Equal(2, EpochRow.ReadCsv(P("resumed", "metrics.csv")).Count);
    }

    [Fact]
    public void CtrlCStopsAfterTheCurrentBatchAndKeepsACheckpoint()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 400, test: 20);
        using var p = CliRunner.StartAsFromTerminal("train", "--data", $"idx:{data}", "--epochs", "500", "--batch-size", "10", "--out", P("stopped"));
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null && !line.StartsWith("Epoch 2/500", StringComparison.Ordinal)) { }
        Assert.NotNull(line);
        // SIGINT is bit 2 of the masks: neither blocked nor ignored, or the test would prove nothing about Ctrl+C.
        string masks = CliRunner.SignalMasks(p.Id);
        Assert.True(masks.Split("; ").All(m => (Convert.ToUInt64(m.Split(':')[1].Trim(), 16) & 2) == 0), masks);
        using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        var rest = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000));
        Assert.True(p.ExitCode == TrainCommand.InterruptedExitCode, $"exit {p.ExitCode}; signal masks at start: {masks}");
        Assert.Contains("interrupted at epoch", rest);
        var cp = Checkpoint.Load(P("stopped", "checkpoint.safetensors"));
        Assert.True(cp.Epoch >= 2 && cp.Epoch < 500);
        Assert.True(File.Exists(P("stopped", "filters-final.png")));
    }

    [Fact]
    public void ParamsForwardAndGradWriteNpyFilesNamedByPath()
    {
        var net = Zoo.SimpleConvNet();
        var parameters = Initializer.Init(net, 3);
        Assert.Equal(0, Cnn($"params --model simple-convnet --seed 3 --out {P("params")}").Code);
        foreach (var (path, t) in parameters.Entries)
        {
            var file = P("params", path.Replace('/', '.') + ".npy");
            Assert.Equal(t.ToArray(), Npy.ReadTensor(file).ToArray());
        }
        var index = JsonDocument.Parse(File.ReadAllText(P("params", "index.json"))).RootElement;
        Assert.Equal("conv1.weight.npy", index.GetProperty("conv1/weight").GetProperty("file").GetString());

        var rng = new Random(5);
        var x = Tensor.FromArray(Enumerable.Range(0, 3 * 784).Select(_ => (float)rng.NextDouble()).ToArray(), 3, 1, 28, 28);
        Npy.Write(P("x.npy"), x);
        Npy.Write(P("y.npy"), NpyArray.FromIntegers(NpyType.Int64, [4L, 0, 9], new Shape(3)));
        Assert.Equal(0, Cnn($"forward --model simple-convnet --seed 3 --input {P("x.npy")} --out {P("out.npy")}").Code);
        Assert.Equal(Apply.Forward(net, parameters, x).ToArray(), Npy.ReadTensor(P("out.npy")).ToArray());

        Assert.Equal(0, Cnn($"grad --model simple-convnet --seed 3 --input {P("x.npy")} --labels {P("y.npy")} --out {P("grad")}").Code);
        var g = Loss.SoftmaxCrossEntropy(net, parameters, x, [4, 0, 9]);
        var loss = Npy.Read(P("grad", "loss.npy"));
        Assert.Equal(0, loss.Shape.Rank);
        Assert.Equal(g.Loss, (float)loss[0]);
        foreach (var (path, t) in g.Gradients.Entries)
            Assert.Equal(t.ToArray(), Npy.ReadTensor(P("grad", path.Replace('/', '.') + ".npy")).ToArray());
        Assert.Equal(x.Shape, Npy.ReadTensor(P("grad", "input-gradient.npy")).Shape);

        Npy.Write(P("yf.npy"), Tensor.Zeros(3));
        var floats = Cnn($"grad --model simple-convnet --input {P("x.npy")} --labels {P("yf.npy")} --out {P("grad2")}");
        Assert.Equal(1, floats.Code);
        Assert.Contains("must be an integer array", floats.Err);
    }

    [Fact]
    public void SummaryPrintsJsonAndReadsCheckpoints()
    {
        var (code, output, _) = Cnn("summary --model lenet5 --json");
        Assert.Equal(0, code);
        var doc = JsonDocument.Parse(output).RootElement;
        Assert.Equal(61706, doc.GetProperty("totals").GetProperty("parameters").GetInt64());
        Assert.Equal("conv1", doc.GetProperty("layers")[0].GetProperty("path").GetString());

        var net = Zoo.SimpleConvNet();
        SafeTensors.Write(P("p.safetensors"), Initializer.Init(net, 1), new Dictionary<string, string> { ["network"] = "simple-convnet" });
        var fromCheckpoint = Cnn($"summary --checkpoint {P("p.safetensors")}");
        Assert.Equal(0, fromCheckpoint.Code);
        Assert.Contains("Network 'simple-convnet'", fromCheckpoint.Out);
        Assert.Contains("Total params: 433,890", fromCheckpoint.Out);

        File.WriteAllText(P("lenet5.json"), NetworkJson.Serialize(Zoo.LeNet5()));
        var fromJson = Cnn($"summary --network {P("lenet5.json")} --json");
        Assert.True(fromJson.Code == 0, fromJson.Err);
        Assert.Equal(61706, JsonDocument.Parse(fromJson.Out).RootElement.GetProperty("totals").GetProperty("parameters").GetInt64());
        Assert.Equal(2, Cnn($"summary --network {P("lenet5.json")} --model lenet5").Code);
    }

    [Fact]
    public void ConvolveFiltersImagesAndArrays()
    {
        // A 6x8 picture, black left half, white right half: the Laplacian responds only at the edge.
        var r = new Raster(8, 6, (0, 0, 0));
        r.Fill(4, 0, 4, 6, (255, 255, 255));
        Png.Save(P("step.png"), r);
        var (code, _, err) = Cnn($"convolve --input {P("step.png")} --kernel laplacian --boundary nearest --out {P("edges.npy")}");
        Assert.True(code == 0, err);
        var y = Npy.ReadTensor(P("edges.npy"));
        Assert.Equal(new Shape(6, 8), y.Shape);
        for (int row = 0; row < 6; row++)
        {
            Assert.Equal([0f, 0, 0, -3, 3, 0, 0, 0], y.ToArray()[(row * 8)..(row * 8 + 8)].Select(v => MathF.Round(v, 4)).ToArray());
        }
        Assert.Equal(0, Cnn($"convolve --input {P("step.png")} --kernel edge-v --out {P("edges.png")}").Code);
        using (var png = SKBitmap.Decode(P("edges.png"))) Assert.Equal((8, 6), (png.Width, png.Height));

        // A JPEG is read too (decoded by SkiaSharp, turned to grey).
        using (var bmp = new SKBitmap(10, 7))
        {
            bmp.Erase(new SKColor(200, 200, 200));
            using var img = SKImage.FromBitmap(bmp);
            using var jpg = img.Encode(SKEncodedImageFormat.Jpeg, 95);
            File.WriteAllBytes(P("grey.jpg"), jpg.ToArray());
        }
        Assert.Equal(0, Cnn($"convolve --input {P("grey.jpg")} --kernel box --boundary reflect --mode valid --out {P("blur.npy")}").Code);
        var blur = Npy.ReadTensor(P("blur.npy"));
        Assert.Equal(new Shape(5, 8), blur.Shape);
        Assert.All(blur.ToArray(), v => Assert.InRange(v, 0.76f, 0.81f));

        // 1-d arrays with a .npy kernel: full convolution as np.convolve([1, 2, 3], [0, 1, 0.5]).
        Npy.Write(P("s.npy"), Tensor.FromArray([1, 2, 3], 3));
        Npy.Write(P("k.npy"), Tensor.FromArray([0, 1, 0.5f], 3));
        Assert.Equal(0, Cnn($"convolve --input {P("s.npy")} --kernel {P("k.npy")} --mode full --out {P("c.npy")}").Code);
        Assert.Equal([0f, 1, 2.5f, 4, 1.5f], Npy.ReadTensor(P("c.npy")).ToArray());
        Assert.Equal(0, Cnn($"convolve --input {P("s.npy")} --kernel {P("k.npy")} --mode full --correlate --out {P("r.npy")}").Code);
        Assert.Equal([0.5f, 2, 3.5f, 3, 0], Npy.ReadTensor(P("r.npy")).ToArray());

        var rank = Cnn($"convolve --input {P("s.npy")} --kernel box --out {P("z.npy")}");
        Assert.Equal(1, rank.Code);
        Assert.Contains("same rank", rank.Err);
        File.WriteAllText(P("fake.png"), "not a picture");
        var fake = Cnn($"convolve --input {P("fake.png")} --kernel box --out {P("z.npy")}");
        Assert.Equal(1, fake.Code);
        Assert.Contains("fake.png", fake.Err);
    }
}
