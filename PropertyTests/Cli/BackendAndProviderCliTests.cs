using Cnn.Core;
using Cnn.Dsl.IO;
using Cnn.Onnx;
using Cnn.Tests.LibTorch;
using TorchSharp;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>
/// <c>cnn train --backend libtorch [--device ...]</c> and <c>cnn predict --provider ...</c>: a run on LibTorch resumes on
/// im2col and ends where an im2col run of the same options ends; devices and providers this machine or package lacks fail
/// with exit 1 and one line naming what is missing.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class BackendAndProviderCliTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-backend");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private static (int Code, string Out, string Err) Cnn(string line) => CliRunner.Run(line.Split(' ', StringSplitOptions.RemoveEmptyEntries));

    [Fact]
    public void A_LibTorch_run_resumed_on_im2col_ends_as_an_im2col_run()
    {
        var data = CliRunner.WriteIdxDigits(P("digits"), train: 100, test: 20);
        const string options = "--batch-size 20 --optimizer momentum --lr 0.02 --quiet";
        var whole = Cnn($"train --data idx:{data} {options} --epochs 2 --out {P("whole")}");
        Assert.True(whole.Code == 0, whole.Err);
        var first = Cnn($"train --data idx:{data} {options} --epochs 1 --backend libtorch --device cpu --out {P("split")}");
        Assert.True(first.Code == 0, first.Err);
        var rest = Cnn($"train --resume {P("split", "checkpoint.safetensors")} {options} --epochs 2");
        Assert.True(rest.Code == 0, rest.Err);

        var expected = Checkpoint.Load(P("whole", "checkpoint.safetensors"));
        var actual = Checkpoint.Load(P("split", "checkpoint.safetensors"));
        Assert.Equal((3, 10L), (actual.Epoch, actual.OptimizerState.Step));
        foreach (var path in expected.Parameters.Paths)
        {
            double d = SideBySideTrainingTests.RelativeNorm(actual.Parameters[path], expected.Parameters[path]);
            Assert.True(d <= 1e-5, $"'{path}': ||a-b||/||b|| = {d:E2} > 1e-5 between the split run and the im2col run.");
        }
    }

    [Fact]
    public void Missing_devices_and_providers_fail_with_one_line_naming_what_is_missing()
    {
        if (!torch.cuda.is_available())
            AssertOneLineError(Cnn("train --backend libtorch --device cuda --epochs 1"), 1, "TorchSharp-cuda-linux");
        AssertOneLineError(Cnn("train --backend libtorch --device tpu --epochs 1"), 1, "expected cpu, cuda or cuda:N");
        var usage = Cnn("train --device cpu --epochs 1");
        Assert.Equal(2, usage.Code);
        Assert.Contains("--device is a LibTorch device: give --backend libtorch with it", usage.Err);

        var model = P("model.onnx");
        Assert.Equal(0, CliRunner.Run("export", "--model", "simple-convnet", "--out", model).Code);
        Npy.Write(P("x.npy"), Tensor.Zeros(2, 1, 28, 28));
        var cpu = Cnn($"predict --onnx {model} --input {P("x.npy")} --out {P("y.npy")} --provider cpu");
        Assert.True(cpu.Code == 0, cpu.Err);
        Assert.Equal(new Shape(2, 10), Npy.ReadTensor(P("y.npy")).Shape);
        if (!OnnxProviders.Available.Contains("CUDAExecutionProvider"))
            AssertOneLineError(Cnn($"predict --onnx {model} --input {P("x.npy")} --out {P("z.npy")} --provider cuda"), 1, "Microsoft.ML.OnnxRuntime.Gpu");
        AssertOneLineError(Cnn($"predict --onnx {model} --input {P("x.npy")} --out {P("z.npy")} --provider npu"), 1, "Unknown ONNX Runtime provider 'npu'");
        Assert.False(File.Exists(P("z.npy")));
    }

    private static void AssertOneLineError((int Code, string Out, string Err) run, int code, string names)
    {
        Assert.True(run.Code == code, $"exit {run.Code}, expected {code}: {run.Err}");
        Assert.Contains(names, run.Err);
        Assert.DoesNotContain("   at ", run.Err);
        Assert.DoesNotContain('\n', run.Err.Trim());
    }
}
