using Cnn.Dsl.IO;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary><c>cnn train</c>'s augmentation options: drawn by the library's batch pipeline, recorded and compared on resume.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class TrainAugmentOptionsTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-augment");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static (int Code, string Out, string Err) Cnn(string line) => CliRunner.Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void TheNewTransformsTrainAreRecordedAndAChangedOneIsRefusedOnResume()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 40, test: 10);
        const string Extra = "--flip-vertical --zoom 0.1 --shear 10 --fill reflect --brightness 0.2 --contrast 0.3 --shift-fraction 0.05 --erase 0.5";
        var run = Cnn($"train --data idx:{data} --epochs 1 --batch-size 20 --augment --normalize {Extra} --quiet --out {P("run")}");
        Assert.True(run.Code == 0, run.Err);
        var cp = Checkpoint.Load(P("run", "checkpoint.safetensors"));
        Assert.Equal("flip-vertical,shift-fraction=0.05,zoom=0.1,shear=10,fill=reflect,brightness=0.2,contrast=0.3,erase=0.5", cp.Metadata["augmentation"]);
        Assert.Equal("true", cp.Metadata["augment"]);

        var changed = Cnn($"train --data idx:{data} --epochs 2 --batch-size 20 --augment {Extra.Replace("--zoom 0.1", "--zoom 0.2")} --quiet --resume {P("run", "checkpoint.safetensors")}");
        Assert.Equal(1, changed.Code);
        Assert.Contains("the augmentation options: recorded flip-vertical,shift-fraction=0.05,zoom=0.1", changed.Err);
        var same = Cnn($"train --data idx:{data} --epochs 2 --batch-size 20 --augment {Extra} --quiet --resume {P("run", "checkpoint.safetensors")}");
        Assert.True(same.Code == 0, same.Err);
    }

    [Theory]
    [InlineData("--zoom 1", "--zoom expects a number above 0 and at most 0.999; found '1'")]
    [InlineData("--shear 90", "--shear expects a number above 0 and at most 89.9; found '90'")]
    [InlineData("--erase 1.5", "--erase expects a number above 0 and at most 1; found '1.5'")]
    [InlineData("--fill mirror", "--fill expects one of constant, nearest, reflect, wrap; found 'mirror'")]
    public void OutOfRangeValuesAreUsageErrors(string option, string message)
    {
        var r = Cnn($"train {option}");
        Assert.Equal(2, r.Code);
        Assert.Contains(message, r.Err);
    }
}
