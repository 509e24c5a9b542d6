using System.Diagnostics;
using Cnn.Core;
using Cnn.Dsl.Data;
using Cnn.Dsl.IO;
using Cnn.Onnx;

namespace Cnn.Cli;

/// <summary><c>cnn predict</c>: an ONNX model in ONNX Runtime, on a labelled data set (accuracy) or on a .npy batch (outputs).</summary>
internal static class PredictCommand
{
    public static readonly string Help = $"""
        usage: cnn predict --onnx FILE.onnx (--data SPEC [--seed N] [--limit N] | --input X.npy --out Y.npy) [options]

        Runs a one-input, one-output float ONNX model (such as cnn export writes) in ONNX Runtime.
        With --data, predicts the class of every held-out example and prints the accuracy; when the model's
        metadata records a normalisation (a checkpoint trained with --normalize), the images are normalised first.
        With --input, writes the model's raw output for the batch as float32 .npy.

        options:
          --onnx FILE.onnx   the model (required); --model FILE.onnx, the older spelling, is accepted
          --data SPEC        {DataSource.Help}; the validation part is used
          --seed N           the split's seed for mnist (1, as cnn run and cnn train)
          --limit N          use at most N examples
          --input X.npy      a batch [N, ...input] (or one example [...input]) of any numeric type
          --out Y.npy        where to write the output for --input; --output, the older spelling, is accepted
          --force            replace the output file if it exists (else an existing file is an error)
          --batch-size N     examples per ONNX Runtime call, 1 to {Opt.MaxBatchSize} (256)
          --threads N        ONNX Runtime's threads per operator, 0 to {Opt.MaxThreads} (4 x the processor count) (0: its choice)
          --no-optimize      run the graph exactly as written (no fusions)
          --provider NAME    ONNX Runtime's execution provider: cpu (default), cuda, tensorrt, rocm or dml, each with an
                             optional :N device index; one the installed ONNX Runtime package lacks is an error

        examples:
          cnn predict --onnx runs/x/model.onnx --data mnist
          cnn predict --onnx model.onnx --input x.npy --out logits.npy
          cnn predict --onnx model.onnx --data mnist --provider cuda
        """;

    public static Command Spec { get; } = new("predict", Help, [Opt.Text("onnx", "model"), Opt.Data(), Opt.Seed(), Opt.Limit(), Opt.Text("input"), Opt.Out("output"), Opt.Force(), Opt.BatchSize(), Opt.Threads(0), Opt.Flag("no-optimize"), Opt.Text("provider")], Predict);

    private static int Predict(Args a)
    {
        var modelPath = Command.Required(a, "onnx");
        var dataSpec = a.String("data");
        var input = a.String("input");
        var output = Command.OutputFile(a, "out");
        int seed = a.Int("seed", 1);
        int? limit = a.String("limit") is null ? null : a.Int("limit", 0);
        int batchSize = a.Int("batch-size", 256);
        int threads = a.Int("threads", 0);
        bool optimize = !a.Flag("no-optimize");
        var provider = a.String("provider") ?? "cpu";
        if ((dataSpec is null) == (input is null)) throw new UsageException("give either --data SPEC or --input X.npy");
        if ((input is null) != (output is null)) throw new UsageException("--input and --out go together");

        using var predictor = new OnnxPredictor(modelPath, new OnnxPredictorOptions { IntraOpThreads = threads, OptimizeGraph = optimize, Provider = provider });
        return input is not null ? WriteOutputs(predictor, input, output!) : Evaluate(predictor, modelPath, dataSpec!, seed, limit, batchSize);
    }

    private static int WriteOutputs(OnnxPredictor predictor, string input, string output)
    {
        var x = Npy.ReadTensor(input);
        var perSample = predictor.InputDimensions.Skip(1).ToArray();
        if (x.Shape.Rank == perSample.Length && x.Shape.Select(d => (long)d).Zip(perSample).All(p => p.Second < 0 || p.First == p.Second))
            x = x.Reshape(x.Shape.PrependBatch(1));
        // In batches, so ONNX Runtime's memory is bounded by the batch, not the number of examples.
        var parts = new List<Tensor>();
        for (int s = 0; s < x.Shape[0]; s += 256) parts.Add(predictor.Run(x.Slice(s, Math.Min(256, x.Shape[0] - s))));
        var y = parts.Count <= 1 ? (parts.Count == 0 ? predictor.Run(x) : parts[0])
            : Tensor.Own(parts.SelectMany(p => p.ToArray()).ToArray(), parts[0].Shape.WithBatch(x.Shape[0]));
        Npy.Write(output, y);
        Console.WriteLine($"{input} {x.Shape} -> {output} {y.Shape}");
        return 0;
    }

    private static int Evaluate(OnnxPredictor predictor, string modelPath, string spec, int seed, int? limit, int batchSize)
    {
        var test = DataSource.Load(spec, seed, limit).Validation;
        if (predictor.Metadata.TryGetValue("normalization", out var text))
        {
            var normalization = Normalization.Parse(text);
            test = normalization.Apply(test);
            Console.WriteLine($"normalising the images as the model's metadata records: {text}");
        }
        var clock = Stopwatch.StartNew();
        int correct = 0;
        double confidence = 0;
        for (int start = 0; start < test.Count; start += batchSize)
        {
            var batch = test.Batch(start, Math.Min(batchSize, test.Count - start));
            var predictions = predictor.Predict(batch.Images);
            for (int i = 0; i < predictions.Count; i++)
            {
                if (predictions[i].Class == batch.Labels[i]) correct++;
                confidence += predictions[i].Probability;
            }
        }
        double seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"{modelPath} on {test.Count} held-out examples of '{spec}' (seed {seed}) in ONNX Runtime:");
        Console.WriteLine($"  accuracy {(double)correct / test.Count:P2} ({correct}/{test.Count}), mean confidence {confidence / test.Count:P1}, " +
                          $"{seconds:F2} s ({test.Count / Math.Max(seconds, 1e-9):F0} examples/s)");
        return 0;
    }
}
