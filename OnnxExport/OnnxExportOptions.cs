namespace Cnn.Onnx;

/// <summary>What <see cref="OnnxExporter"/> writes around the graph: names, versions and metadata.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The graph's name (default <c>network</c>).</summary>
    public string ModelName { get; init; } = "network";

    /// <summary>
    /// The ONNX IR version written to the model (default 8, which ONNX 1.10 and later read, with opsets up to 17).
    /// From <see cref="OnnxExporter.MinIrVersion"/> (4: initializers need not be listed among the graph inputs) to
    /// <see cref="OnnxExporter.MaxIrVersion"/> (13, the newest ONNX Runtime 1.31 loads).
    /// </summary>
    public long IrVersion { get; init; } = 8;

    /// <summary>
    /// The version of the default (<c>ai.onnx</c>) operator set (default 17), from <see cref="OnnxExporter.MinOpset"/>
    /// (13: Softmax along one axis) to <see cref="OnnxExporter.MaxOpset"/> (26, the newest ONNX Runtime 1.31 implements).
    /// </summary>
    public long Opset { get; init; } = 17;

    /// <summary>
    /// Free-form key-value pairs written to the model's <c>metadata_props</c> (in ordinal key order): the class labels,
    /// the input normalisation (<c>cnn predict</c> applies a <c>normalization</c> entry before predicting), the seed, ...
    /// </summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>The name of the graph's one input (default <c>input</c>).</summary>
    public string InputName { get; init; } = "input";

    /// <summary>The name of the graph's one output (default <c>output</c>).</summary>
    public string OutputName { get; init; } = "output";
}
