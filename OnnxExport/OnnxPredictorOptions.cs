namespace Cnn.Onnx;

/// <summary>How <see cref="OnnxPredictor"/> sets up its ONNX Runtime session.</summary>
public sealed record OnnxPredictorOptions
{
    /// <summary>Threads used inside one operator; 0 (the default) lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// Whether ONNX Runtime rewrites the graph before running it (fusions, constant folding; default true).
    /// Off runs the graph exactly as written, which is what a comparison with the native interpreter wants to test.
    /// </summary>
    public bool OptimizeGraph { get; init; } = true;

    /// <summary>
    /// Whether ONNX Runtime's intra-op threads stop spinning as soon as a run returns (its session option
    /// <c>session.force_spinning_stop</c>; default false, ONNX Runtime's own default). By default they keep spinning after a
    /// run, waiting for the next one, and hold cores the rest of the process may want: measured on 2 cores (AMD Zen 3),
    /// the session's worker used 1.2 s of processor time in 2 s while the session ran a third of the time, and the other
    /// two thirds a 2-thread convolution network beside it ran at its 1-thread speed. Set it when the process does other
    /// work between runs; spinning still starts again with each run.
    /// </summary>
    public bool StopSpinningBetweenRuns { get; init; }

    /// <summary>What the model's output rows hold, for <see cref="OnnxPredictor.Predict"/> (default <see cref="OutputKind.Auto"/>).</summary>
    public OutputKind Output { get; init; } = OutputKind.Auto;

    /// <summary>
    /// The execution provider: <c>cpu</c> (the default), <c>cuda</c>, <c>tensorrt</c>, <c>rocm</c> or <c>dml</c>, each with an
    /// optional <c>:N</c> device index (<c>cuda:1</c>). Each GPU provider needs its ONNX Runtime package (see
    /// <see cref="OnnxProviders"/>); asking for one the installed package lacks is a <see cref="Cnn.Core.CnnException"/>.
    /// </summary>
    public string Provider { get; init; } = "cpu";
}
