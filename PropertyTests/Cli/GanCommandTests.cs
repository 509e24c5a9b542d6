using System.Globalization;
using Cnn.Core;
using Cnn.Dsl;
using Cnn.Dsl.IO;
using SkiaSharp;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>
/// <c>cnn gan</c> on a few dozen synthetic digits (bars) for one or two epochs: the files of the run folder, finite
/// losses, a resumed run bitwise equal to an uninterrupted one, the learning-rate decay option, and the errors of its options. Not the quality bar: that
/// takes thousands of real digits and minutes (README, "Generative adversarial training").
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class GanCommandTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-gan");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static (int Code, string Out, string Err) Cnn(string line) => CliRunner.Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void GanFillsTheRunFolderAndAResumedRunEndsBitwiseEqualToAnUninterruptedOne()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 48, test: 20);
        var options = $"--data idx:{data} --batch-size 16 --classifier-epochs 1 --ema 0.9";
        var common = $"gan {options} --seed 3";
        var full = Cnn($"{common} --epochs 2 --out {P("full")}");
        Assert.True(full.Code == 0, full.Err);
        Assert.Contains("epoch 2/2: d_loss ", full.Out);
        Assert.Contains("untrained generator: ", full.Out);
        foreach (var f in new[] { "checkpoint.safetensors", "losses.csv", "report.txt", "samples-000.png", "samples-001.png", "samples-002.png" })
            Assert.True(File.Exists(P("full", f)), f);
        using (var grid = SKBitmap.Decode(P("full", "samples-002.png")))
            Assert.Equal(8 * (2 * 28 + 2) + 2, grid.Width);
        var rows = File.ReadAllLines(P("full", "losses.csv"));
        Assert.Equal("epoch,d_loss,g_loss,d_real,d_fake,confident,confident_unaveraged,seconds,cpu_seconds", rows[0]);
        Assert.Equal(new[] { "0", "1", "2" }, rows.Skip(1).Select(r => r.Split(',')[0]));
        foreach (var row in rows.Skip(2))
        {
            var f = row.Split(',').Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.All(f, v => Assert.True(double.IsFinite(v), row));
            Assert.True(f[0] > 0 && f[1] > 0, row);
            Assert.InRange(f[4], 0, 1);
            Assert.InRange(f[5], 0, 1);
        }
        var report = File.ReadAllText(P("full", "report.txt"));
        Assert.Contains("quality measure: ", report);
        Assert.Contains("epoch 1/2: ", report);

        var cp = GanCheckpoint.Load(P("full", "checkpoint.safetensors"));
        Assert.Equal((3, 0, 6L), (cp.Epoch, cp.Batch, cp.Step));
        var (g, d) = cp.Networks()!.Value;
        Assert.Equal(Zoo.DcganGenerator(8), g);
        Assert.Equal(Zoo.DcganDiscriminator(), d);
        Assert.Equal("3", cp.Metadata["seed"]);
        // The samples come from the moving average of the generator's weights, saved with them.
        Assert.Equal("0.9", cp.Metadata["ema"]);
        Assert.Equal("0", cp.Metadata["lr_decay"]);
        Assert.Equal(cp.Generator.Parameters.Paths, cp.GeneratorAverage!.Parameters.Paths);
        Assert.Equal(cp.Generator.State.Paths, cp.GeneratorAverage.State.Paths);

        // --lr-decay reaches the trainer: the same run with decaying rates ends elsewhere.
        var decayed = Cnn($"{common} --epochs 2 --lr-decay 0.5 --quiet --out {P("decayed")}");
        Assert.True(decayed.Code == 0, decayed.Err);
        var decayedCp = GanCheckpoint.Load(P("decayed", "checkpoint.safetensors"));
        Assert.Equal("0.5", decayedCp.Metadata["lr_decay"]);
        Assert.NotEqual(cp.Generator.Parameters["deconv1/weight"].ToArray(), decayedCp.Generator.Parameters["deconv1/weight"].ToArray());

        var first = Cnn($"{common} --epochs 1 --quiet --out {P("resumed")}");
        Assert.True(first.Code == 0, first.Err);
        Assert.Equal("", first.Out);
        var second = Cnn($"{common} --epochs 2 --quiet --resume {P("resumed", "checkpoint.safetensors")}");
        Assert.True(second.Code == 0, second.Err);
        var resumed = GanCheckpoint.Load(P("resumed", "checkpoint.safetensors"));
        var averages = (new GanPlayer(cp.GeneratorAverage.Parameters, cp.GeneratorAverage.State, cp.Generator.OptimizerState),
            new GanPlayer(resumed.GeneratorAverage!.Parameters, resumed.GeneratorAverage.State, resumed.Generator.OptimizerState));
        foreach (var (a, b) in new[] { (cp.Generator, resumed.Generator), (cp.Discriminator, resumed.Discriminator), averages })
        {
            Assert.Equal(a.Parameters.Paths, b.Parameters.Paths);
            foreach (var path in a.Parameters.Paths) Assert.True(a.Parameters[path].Span.SequenceEqual(b.Parameters[path].Span), path);
            foreach (var path in a.State.Paths) Assert.True(a.State[path].Span.SequenceEqual(b.State[path].Span), path);
            foreach (var (slot, t) in a.OptimizerState.Slots)
                foreach (var path in t.Paths) Assert.True(t[path].Span.SequenceEqual(b.OptimizerState.Slots[slot][path].Span), $"{slot} {path}");
        }
        Assert.Equal(rows, File.ReadAllLines(P("resumed", "losses.csv")).Select((r, i) => i == 0 ? r : string.Join(",", r.Split(',')[..7]) + "," + string.Join(",", rows[i].Split(',')[7..])));

        var other = Cnn($"gan {options} --epochs 3 --seed 4 --resume {P("resumed", "checkpoint.safetensors")}");
        Assert.Equal(1, other.Code);
        Assert.Contains("--seed: recorded 3, given 4", other.Err);
        var decaying = Cnn($"{common} --epochs 3 --lr-decay 0.4 --resume {P("resumed", "checkpoint.safetensors")}");
        Assert.Equal(1, decaying.Code);
        Assert.Contains("--lr-decay: recorded 0, given 0.4", decaying.Err);
        var again = Cnn($"{common} --epochs 1 --out {P("full")}");
        Assert.Equal(1, again.Code);
        Assert.Contains("not empty", again.Err);
    }

    [Theory]
    [InlineData("gan --data cifar:x", "cnn gan: --data expects digits, fashion-mnist or idx:DIR; found 'cifar:x'")]
    [InlineData("gan --label-smoothing 0.7", "cnn gan: --label-smoothing expects a number above 0 and at most 0.5; found '0.7'")]
    [InlineData("gan --lr-decay 1", "cnn gan: --lr-decay expects a number from 0 up to but not including 1; found '1'")]
    [InlineData("gan --ema 1", "cnn gan: --ema expects a number from 0 up to but not including 1; found '1'")]
    [InlineData("gan --classifier-epochs 101", "cnn gan: --classifier-epochs expects an integer from 0 to 100; found '101'")]
    public void AWrongArgumentIsAUsageError(string line, string message)
    {
        var (code, output, err) = Cnn(line);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.StartsWith(message, err);
        Assert.Contains("usage: cnn gan", err);
    }

    [Fact]
    public void ATrainCheckpointIsNotAGanCheckpoint()
    {
        var path = P("model.safetensors");
        Model.Init(Zoo.LeNet5()).Save(path);
        var (code, _, err) = Cnn($"gan --resume {path}");
        Assert.Equal(1, code);
        Assert.Contains("is not a GAN checkpoint", err);
        Assert.DoesNotContain("   at ", err);
    }
}
