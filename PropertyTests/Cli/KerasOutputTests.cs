using Cnn.Core;
using Cnn.Dsl.Data;
using System.Buffers.Binary;
using Cnn.Cli;
using Cnn.Cli.Pictures;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using Xunit;
using Model = Cnn.Cli.Model;

namespace Cnn.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class KerasOutputTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-keras");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static (int Code, string Out, string Err) Cnn(string line) => CliRunner.Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    private static TrainProgress Progress(int batch) => new(3, batch, 20, 0.5f - batch * 0.01f, 0.8f + batch * 0.005f, TimeSpan.FromMilliseconds(100 * batch));

    private static readonly EpochStats Stats = new(3, 0.3012f, 0.9123f, new Evaluation(0.2512f, 0.9345f, 500), TimeSpan.FromSeconds(2.4));

    [Fact]
    public void PlainLinesShowTheEpochTheBarStepsTimeLeftTimePerStepRunningMeansThenValidation()
    {
        var w = new StringWriter();
        var r = new TrainReporter(ReportStyle.Lines, 10, w);
        for (int b = 1; b <= 20; b++) r.Report(Progress(b));
        r.Epoch(Stats, "cp");
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain('\r', w.ToString());
        Assert.Equal("Epoch 3/10", lines[0]);
        Assert.Equal(" 1/20 [>.............................] - ETA: 2s - 100ms/step - loss: 0.4900 - accuracy: 0.8050", lines[1]);
        Assert.Equal("10/20 [==============>...............] - ETA: 1s - 100ms/step - loss: 0.4000 - accuracy: 0.8500", lines[6]);
        // The header, the first batch, one line per tenth of the epoch (2, 4, ..., 18), then the closing line with the validation figures.
        Assert.Equal(12, lines.Length);
        Assert.Equal("20/20 [==============================] - 2s 100ms/step - loss: 0.3012 - accuracy: 0.9123 - val_loss: 0.2512 - val_accuracy: 0.9345", lines[^1]);
    }

    [Fact]
    public void OnATerminalTheBarIsRedrawnInPlaceAndVerbose2PrintsOneLinePerEpoch()
    {
        var w = new StringWriter();
        var r = new TrainReporter(ReportStyle.Bar, 10, w, width: 160);
        for (int b = 1; b <= 20; b++) r.Report(Progress(b));
        r.Epoch(Stats, "cp");
        var text = w.ToString();
        Assert.StartsWith("Epoch 3/10\n\r 1/20 [>", text);
        Assert.Equal(21, text.Count(c => c == '\r'));
        Assert.Equal(2, text.Count(c => c == '\n'));
        Assert.EndsWith("- val_accuracy: 0.9345\n", text);

        var one = new StringWriter();
        var e = new TrainReporter(ReportStyle.EpochLine, 10, one);
        for (int b = 1; b <= 20; b++) e.Report(Progress(b));
        e.Epoch(Stats, "cp");
        Assert.Equal("Epoch 3/10 - 20/20 - 2s 100ms/step - loss: 0.3012 - accuracy: 0.9123 - val_loss: 0.2512 - val_accuracy: 0.9345\n", one.ToString());
    }

    /// <summary>
    /// On an 80-column terminal every redraw (and the closing line) leaves the last column free, so the terminal never
    /// wraps the bar into a new line per step; at 160 columns the full Keras bar is kept. Long runs (10,000 steps, an hour
    /// left) are the widest lines.
    /// </summary>
    [Theory]
    [InlineData(80)]
    [InlineData(60)]
    [InlineData(40)]
    [InlineData(160)]
    public void A_redrawn_bar_fits_the_terminal_width(int columns)
    {
        var w = new StringWriter();
        var r = new TrainReporter(ReportStyle.Bar, 100, w, columns);
        for (int b = 1; b <= 10_000; b += 997)
            r.Report(new TrainProgress(100, b, 10_000, 12.3456f, 0.1234f, TimeSpan.FromSeconds(0.41 * b)));
        r.Epoch(new EpochStats(100, 0.3012f, 0.9123f, new Evaluation(0.2512f, 0.9345f, 500), TimeSpan.FromSeconds(4100)), "cp");
        var redraws = w.ToString().Split('\r', '\n').Where(s => s.Length > 0).ToList();
        Assert.Equal(13, redraws.Count); // the header, eleven bars, the closing line
        Assert.All(redraws, s => Assert.True(s.Length < columns, $"{s.Length} characters at {columns} columns: '{s}'"));
        Assert.All(redraws.Skip(1), s => Assert.Contains("loss: ", s));
        if (columns >= 160) Assert.Contains("[==============================] - 1:08:20 410ms/step - loss: 0.3012 - accuracy: 0.9123 - val_loss", redraws[^1]);
        if (columns == 80) Assert.Contains("val_acc", redraws[^1]);
    }

    [Fact]
    public void Verbose_in_the_library_prints_synchronously_in_order()
    {
        var digits = new LabeledData(Tensor.FromArray(Enumerable.Range(0, 40 * 784).Select(i => (i % 7) / 7f).ToArray(), 40, 1, 28, 28),
            Enumerable.Range(0, 40).Select(i => i % 10).ToArray(), 10);
        var net = Zoo.SimpleConvNet();
        var w = new StringWriter();
        var saved = Console.Out;
        Console.SetOut(w);
        try
        {
            Trainer.Fit(net, Initializer.Init(net, 1), digits, new TrainOptions(2, 10, new Sgd(0.01f)) { Verbose = 1 }, validation: digits);
        }
        finally
        {
            Console.SetOut(saved);
        }
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // Redirected output: plain lines; each epoch's header, its first batch and the closing line last, in order.
        Assert.Equal("Epoch 1/2", lines[0]);
        Assert.StartsWith("1/4 [", lines[1]);
        Assert.StartsWith("4/4 [==============================] - ", lines[Array.IndexOf(lines, "Epoch 2/2") - 1]);
        Assert.Contains(" - val_accuracy: ", lines[^1]);
        Assert.Throws<CnnException>(() => Trainer.Fit(net, Initializer.Init(net, 1), digits, new TrainOptions(1, 10, new Sgd(0.01f)) { Verbose = 3 }));
    }

    [Fact]
    public void KerasDurationsAndStepTimes()
    {
        Assert.Equal("7s", ConsoleProgress.Duration(7.4));
        Assert.Equal("1:05", ConsoleProgress.Duration(65));
        Assert.Equal("1:02:03", ConsoleProgress.Duration(3723));
        Assert.Equal("850us/step", ConsoleProgress.PerStep(850e-6));
        Assert.Equal("41ms/step", ConsoleProgress.PerStep(0.041));
        Assert.Equal("2s/step", ConsoleProgress.PerStep(2.2));
    }

    [Fact]
    public void Verbose2PrintsOneLinePerEpochAndVerbose0Nothing()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 100, test: 20);
        var (code, output, err) = Cnn($"train --data idx:{data} --epochs 2 --batch-size 25 --verbose 2 --one-cycle --out {P("v2")}");
        Assert.True(code == 0, err);
        var epochLines = output.Split('\n').Where(l => l.StartsWith("Epoch ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, epochLines.Count);
        Assert.Matches(@"^Epoch 1/2 - 4/4 - \d+s \d+(ms|us|s)/step - loss: \d\.\d{4} - accuracy: \d\.\d{4} - val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}$", epochLines[0]);
        Assert.DoesNotContain("ETA", output);
        Assert.Contains("one-cycle", output);
        Assert.Equal("one-cycle", Checkpoint.Load(P("v2", "checkpoint.safetensors")).Metadata["schedule"]);

        var quiet = Cnn($"train --data idx:{data} --epochs 1 --batch-size 25 --verbose 0 --out {P("v0")}");
        Assert.Equal((0, ""), (quiet.Code, quiet.Out));
        foreach (var (line, message) in new[]
        {
            ("--verbose 3", "--verbose expects an integer from 0 to 2; found '3'"),
            ("--verbose 1 --json", "--verbose and --json exclude each other"),
            ("--quiet --verbose 2", "--quiet and --verbose 1|2 exclude each other"),
            ("--early-stopping 0", "--early-stopping expects an integer from 1 to 100000; found '0'"),
        })
        {
            var bad = Cnn($"train --data idx:{data} {line} --out {P("bad")}");
            Assert.Equal(2, bad.Code);
            Assert.Contains(message, bad.Err);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EarlyStoppingEndsTrainingWhenTheValidationLossStopsImprovingAndKeepsTheBestWeights(bool augment)
    {
        // Labels that are noise: nothing generalises, so the validation loss rises after an epoch or two.
        var data = WriteNoiseIdx(P("noise"));
        var (code, output, err) = Cnn($"train --data idx:{data} --epochs 40 --batch-size 10 --lr 0.003 --early-stopping 2 --verbose 2{(augment ? " --augment" : "")} --out {P("es")}");
        Assert.True(code == 0, err);
        var rows = EpochRow.ReadCsv(P("es", TrainCommand.MetricsFile));
        Assert.InRange(rows.Count, 3, 39);
        Assert.Contains($"early stopping after epoch {rows.Count}: kept the best epoch's weights", output);
        // Stopped because two epochs in a row did not beat the best, and the checkpoint holds the best epoch's weights.
        var best = rows.MinBy(r => r.ValidationLoss)!;
        Assert.Equal(rows.Count - 2, best.Epoch);
        var model = Model.Load(P("es", "checkpoint.safetensors"));
        var source = DataSource.Load($"idx:{data}", 1, null, model.Network.InputShape);
        Assert.Equal(best.ValidationLoss, Trainer.Evaluate(model.Network, model.Parameters, source.Validation, 256, model.State).Loss, 4);
    }

    [Fact]
    public void LrFindWritesThePlotAndTheCurveAndSuggestsARate()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 300, test: 20);
        var (code, output, err) = Cnn($"lr-find --data idx:{data} --batch-size 20 --steps 40 --end 10 --out {P("lr.png")} --csv {P("lr.csv")}");
        Assert.True(code == 0, err);
        Assert.Matches(@"suggested learning rate: [0-9.eE+-]+ \(steepest descent of the smoothed loss\)", output);
        Assert.Contains("minimum of the smoothed loss at rate", output);
        // Invariant G-format with a Python exponent, never .NET's 1E-07 (issue 21).
        Assert.Contains("rates 1e-07 to 10 over", output);
        Assert.DoesNotContain("E-0", output);
        using var png = SkiaSharp.SKBitmap.Decode(P("lr.png"));
        Assert.Equal((800, 500), (png.Width, png.Height));
        var csv = File.ReadAllLines(P("lr.csv"));
        Assert.Equal("step,rate,loss,smoothed_loss", csv[0]);
        Assert.InRange(csv.Length, 5, 41);
        var help = CliRunner.Run("lr-find", "--help");
        Assert.Contains("examples:", help.Out);
        Assert.Contains("\n  lr-find ", CliRunner.Run("--help").Out);
        Assert.Equal(2, Cnn("lr-find --start 1 --end 0.1").Code);
    }

    [Fact]
    public void GradCamOverlaysTheMapOnTheInputAsThreePanels()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 200, test: 20);
        Assert.Equal(0, Cnn($"train --data idx:{data} --epochs 2 --batch-size 20 --quiet --out {P("run")}").Code);
        var cp = P("run", "checkpoint.safetensors");
        var (code, output, err) = Cnn($"gradcam --checkpoint {cp} --index 3 --layer conv1 --out {P("cam.png")}");
        Assert.True(code == 0, err);
        Assert.Contains("validation example 3", output);
        Assert.Matches(@"class \d \(predicted\): score -?\d+\.\d{3}, probability \d\.\d{3}; layer conv1 \[30, 24, 24\]", output);
        using (var png = SkiaSharp.SKBitmap.Decode(P("cam.png")))
        {
            // Three panels of 28 x 8 pixels, the caption strip and the title above them, the colour bar beside them.
            Assert.InRange(png.Width, 3 * 28 * 8 + 4 * GradCamCommand.Gap + Figure.BarWidth, 2000);
            Assert.InRange(png.Height, GradCamCommand.CaptionStrip + 28 * 8 + GradCamCommand.Gap + 3 * Figure.LineSize, 2000);
        }

        // An image file as input, and a chosen class.
        using (var bmp = new SkiaSharp.SKBitmap(56, 56))
        {
            using (var canvas = new SkiaSharp.SKCanvas(bmp))
            {
                canvas.Clear(SkiaSharp.SKColors.Black);
                canvas.DrawRect(10, 20, 36, 8, new SkiaSharp.SKPaint { Color = SkiaSharp.SKColors.White });
            }
            using var file = File.Create(P("bar.png"));
            bmp.Encode(file, SkiaSharp.SKEncodedImageFormat.Png, 100);
        }
        var image = Cnn($"gradcam --checkpoint {cp} --input {P("bar.png")} --class 4 --out {P("cam2.png")}");
        Assert.True(image.Code == 0, image.Err);
        Assert.Contains("class 4: score", image.Out);
        Assert.Contains("layer pool1", image.Out);
        Assert.True(File.Exists(P("cam2.png")));

        Assert.Contains("has no layer 'dense9'", Cnn($"gradcam --checkpoint {cp} --layer dense9 --out {P("x.png")}").Err);
        Assert.Contains("\n  gradcam ", CliRunner.Run("--help").Out);
        Assert.Contains("examples:", CliRunner.Run("gradcam", "--help").Out);
    }

    [Fact]
    public void TheJetColoursRunFromBlueToRed()
    {
        Assert.Equal((0f, 0f, 0.5f), GradCamCommand.Jet(0f));
        Assert.Equal((0.5f, 0f, 0f), GradCamCommand.Jet(1f));
        var mid = GradCamCommand.Jet(0.5f);
        Assert.True(mid.G > 0.9f && mid.R > 0.4f && mid.B > 0.4f, mid.ToString());
    }

    /// <summary>IDX files of faint noise with random labels (train 100, t10k 40): nothing to learn that generalises.</summary>
    private static string WriteNoiseIdx(string folder)
    {
        Directory.CreateDirectory(folder);
        void Write(string prefix, int n, int seed)
        {
            var rng = new Random(seed);
            var px = new byte[n * 784];
            rng.NextBytes(px);
            var labels = Enumerable.Range(0, n).Select(_ => (byte)rng.Next(10)).ToArray();
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte"), Idx(0x803, [n, 28, 28], px));
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), Idx(0x801, [n], labels));
        }
        Write("train", 100, 5);
        Write("t10k", 40, 6);
        return folder;
    }

    private static byte[] Idx(int magic, int[] dims, byte[] data)
    {
        var b = new byte[4 + 4 * dims.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(b, magic);
        for (int a = 0; a < dims.Length; a++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * a), dims[a]);
        data.CopyTo(b, 4 + 4 * dims.Length);
        return b;
    }
}
