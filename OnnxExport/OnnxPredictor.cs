using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Cnn.Core;
using Microsoft.ML.OnnxRuntime;
using FormatException = Cnn.Core.FormatException;
using Tensor = Cnn.Core.Tensor;

namespace Cnn.Onnx;

/// <summary>
/// Runs a one-input, one-output float ONNX model (such as one written by <see cref="OnnxExporter"/>) in
/// ONNX Runtime, taking and returning <see cref="Tensor"/>s. <see cref="Run"/>, <see cref="PredictClasses"/> and
/// <see cref="Predict"/> may be called from several threads at once (ONNX Runtime's <c>Run</c> is thread-safe and this
/// object holds no other mutable state); <see cref="Dispose"/> must not race with them.
/// </summary>
public sealed class OnnxPredictor : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly long[] _inputDimensions;
    private readonly OutputKind _outputKind;
    private volatile bool _disposed;

    /// <summary>Loads the model in file <paramref name="path"/>.</summary>
    /// <param name="path">An ONNX model file.</param>
    /// <param name="options">Session settings; the defaults when null.</param>
    /// <exception cref="CnnException">The file does not exist, is not a model ONNX Runtime can load (<see cref="FormatException"/>), or the model does not have one float input and one float output.</exception>
    public OnnxPredictor(string path, OnnxPredictorOptions? options = null)
        : this(Open(path, options), $"'{path}'", options?.Output ?? OutputKind.Auto)
    {
    }

    /// <summary>Loads a model from its serialized bytes (as <see cref="OnnxExporter.ToBytes(Cnn.Dsl.Network, Cnn.Dsl.Parameters, OnnxExportOptions?)"/> returns).</summary>
    /// <param name="model">The bytes of an ONNX <c>ModelProto</c>.</param>
    /// <param name="options">Session settings; the defaults when null.</param>
    /// <exception cref="CnnException">The bytes are not a model ONNX Runtime can load (<see cref="FormatException"/>), or the model does not have one float input and one float output.</exception>
    public OnnxPredictor(byte[] model, OnnxPredictorOptions? options = null)
        : this(Open(model, options), "the model bytes", options?.Output ?? OutputKind.Auto)
    {
    }

    private OnnxPredictor(InferenceSession session, string source, OutputKind outputKind)
    {
        _session = session;
        _outputKind = outputKind;
        try
        {
            if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count != 1)
                throw new CnnException(
                    $"ONNX model from {source}: expected one input and one output; found {session.InputMetadata.Count} inputs and {session.OutputMetadata.Count} outputs.");
            var (inputName, input) = session.InputMetadata.Single();
            var (outputName, output) = session.OutputMetadata.Single();
            foreach (var (name, meta) in new[] { (inputName, input), (outputName, output) })
                if (!meta.IsTensor || meta.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
                    throw new CnnException($"ONNX model from {source}: '{name}' should be a float32 tensor; found {meta.OnnxValueType} of {meta.ElementDataType}.");
            _inputNames = new[] { inputName };
            _outputNames = new[] { outputName };
            _inputDimensions = input.Dimensions.Select(d => (long)d).ToArray();
            // ONNX Runtime's metadata holds sizes as 32-bit integers and reports a declared size beyond 2^31 - 1 as 0,
            // so a 0 here is either an empty axis or one too large to be read; neither can take a batch.
            if (Array.IndexOf(_inputDimensions, 0L) is var empty and >= 0)
                throw new CnnException(
                    $"ONNX model from {source}: input '{inputName}' declares axis {empty} with size 0 or above {int.MaxValue} (ONNX Runtime reads both as 0); every axis must be from 1 to {int.MaxValue}, or symbolic.");
            Metadata = new Dictionary<string, string>(session.ModelMetadata.CustomMetadataMap, StringComparer.Ordinal);
            // An error while running reaches the caller as an exception with ONNX Runtime's message; its logger would
            // print the same message again to stderr, in ANSI colour, ahead of ours.
            _runOptions = new RunOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The name of the model's input.</summary>
    public string InputName => _inputNames[0];

    /// <summary>The name of the model's output.</summary>
    public string OutputName => _outputNames[0];

    /// <summary>The dimensions of the model's input, batch first; -1 for a symbolic axis (such as the batch).</summary>
    public IReadOnlyList<long> InputDimensions => _inputDimensions;

    /// <summary>The model's <c>metadata_props</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The model's output for a batch.</summary>
    /// <param name="batch">The input, with the shape the model declares (any size along symbolic axes).</param>
    /// <returns>A new tensor with the output's shape, as ONNX Runtime reports it.</returns>
    /// <exception cref="ShapeException">The batch's shape does not fit the model's input.</exception>
    /// <exception cref="CnnException">ONNX Runtime failed to run the model; its message is included.</exception>
    public Tensor Run(Tensor batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckInputShape(batch.Shape);
        var dims = batch.Shape.Select(d => (long)d).ToArray();
        try
        {
            // ONNX Runtime only reads its inputs, so the immutable tensor's memory is lent to it without a copy.
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, MemoryMarshal.AsMemory(batch.Memory), dims);
            using var outputs = _session.Run(_runOptions, _inputNames, new[] { input }, _outputNames);
            var output = outputs[0];
            var shape = output.GetTensorTypeAndShape().Shape;
            return Tensor.Own(output.GetTensorDataAsSpan<float>().ToArray(), new Shape(shape.Select(d => checked((int)d)).ToArray()));
        }
        catch (OnnxRuntimeException e)
        {
            throw new CnnException($"ONNX Runtime failed to run the model on a batch of shape {batch.Shape}: {e.Message}", e);
        }
    }

    /// <summary>The index of the largest output of each row (the first one on ties): the predicted class of each sample.</summary>
    /// <param name="batch">The input batch.</param>
    /// <exception cref="CnnException">As for <see cref="Run"/>, or the model's output is not <c>[batch, classes]</c>.</exception>
    public IReadOnlyList<int> PredictClasses(Tensor batch)
    {
        var scores = Run(batch);
        if (scores.Shape.Rank != 2 || scores.Shape[1] == 0)
            throw new CnnException($"PredictClasses needs a model whose output is [batch, classes]; its output has shape {scores.Shape}.");
        int rows = scores.Shape[0], classes = scores.Shape[1];
        var result = new int[rows];
        for (int r = 0; r < rows; r++) result[r] = TensorPrimitives.IndexOfMax(scores.Span.Slice(r * classes, classes));
        return result;
    }

    /// <summary>
    /// The predicted class of each sample of a batch, with the probability of every class: the softmax of the
    /// model's output rows, unless they are probabilities already (see <see cref="OnnxPredictorOptions.Output"/>).
    /// </summary>
    /// <param name="batch">The input batch (images <c>[N, C, H, W]</c> for an image classifier).</param>
    /// <returns>One prediction per sample, in batch order.</returns>
    /// <exception cref="CnnException">As for <see cref="Run"/>, or the model's output is not <c>[batch, classes]</c>.</exception>
    public IReadOnlyList<Prediction> Predict(Tensor batch)
    {
        var scores = Run(batch);
        if (scores.Shape.Rank != 2 || scores.Shape[1] == 0)
            throw new CnnException($"Predict needs a model whose output is [batch, classes]; its output has shape {scores.Shape}.");
        int rows = scores.Shape[0], classes = scores.Shape[1];
        var result = new Prediction[rows];
        for (int r = 0; r < rows; r++)
        {
            var row = scores.Span.Slice(r * classes, classes);
            var p = new float[classes];
            if (_outputKind == OutputKind.Probabilities || (_outputKind == OutputKind.Auto && IsDistribution(row))) row.CopyTo(p);
            else TensorPrimitives.SoftMax(row, p);
            int best = TensorPrimitives.IndexOfMax(p);
            result[r] = new Prediction(best, p[best], Array.AsReadOnly(p));
        }
        return result;
    }

    private static bool IsDistribution(ReadOnlySpan<float> row)
    {
        foreach (var v in row)
            if (!(v >= 0f)) return false;
        return MathF.Abs(TensorPrimitives.Sum(row) - 1f) <= 1e-4f;
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _runOptions.Dispose();
        _session.Dispose();
    }

    private void CheckInputShape(Shape shape)
    {
        bool fits = shape.Rank == _inputDimensions.Length;
        for (int i = 0; fits && i < shape.Rank; i++) fits = _inputDimensions[i] < 0 || _inputDimensions[i] == shape[i];
        if (!fits || shape.Size == 0)
        {
            var expected = string.Join(", ", _inputDimensions.Select(d => d < 0 ? "any" : d.ToString()));
            throw new ShapeException($"ONNX model input '{InputName}': expected a non-empty tensor of shape [{expected}]; found {shape}.");
        }
    }

    private static InferenceSession Open(string path, OnnxPredictorOptions? options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new CnnException($"ONNX model file '{path}' does not exist.");
        // Only a regular file: ONNX Runtime would block for ever opening a FIFO, or read a device without end.
        Dsl.IO.InputFile.Check(path, "ONNX model file", long.MaxValue, "none");
        return Open(o => new InferenceSession(path, o), $"'{path}'", options);
    }

    private static InferenceSession Open(byte[] model, OnnxPredictorOptions? options)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Open(o => new InferenceSession(model, o), "the model bytes", options);
    }

    private static InferenceSession Open(Func<SessionOptions, InferenceSession> create, string source, OnnxPredictorOptions? options)
    {
        options ??= new OnnxPredictorOptions();
        if (options.IntraOpThreads < 0)
            throw new CnnException($"OnnxPredictor: the intra-op thread count must be 0 (let ONNX Runtime choose) or more; found {options.IntraOpThreads}.");
        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = options.IntraOpThreads,
            GraphOptimizationLevel = options.OptimizeGraph ? GraphOptimizationLevel.ORT_ENABLE_ALL : GraphOptimizationLevel.ORT_DISABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
        };
        if (options.StopSpinningBetweenRuns) sessionOptions.AddSessionConfigEntry("session.force_spinning_stop", "1");
        OnnxProviders.Append(sessionOptions, options.Provider ?? "cpu");
        try
        {
            return create(sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new FormatException($"ONNX model from {source}: ONNX Runtime cannot load it: {e.Message}", e);
        }
    }
}
