namespace Cnn.Onnx;

/// <summary>What <see cref="OnnxExporter"/> writes around the graph: names, versions and metadata.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The graph's name (default <c>network</c>).</summary>
    public string ModelName { get; init; } = "network";

    /// <summary>
    /// The ONNX IR version written to the model (default 8, which ONNX 1.10 and later read, with opsets up to 17).
    /// At least 4: from IR 4 on, initializers need not be listed among the graph inputs.
    /// </summary>
    public long IrVersion { get; init; } = 8;

    /// <summary>The version of the default (<c>ai.onnx</c>) operator set (default 17). At least 11: Gemm's bias is optional from 11.</summary>
    public long Opset { get; init; } = 17;

    /// <summary>Free-form key-value pairs written to the model's <c>metadata_props</c> (in ordinal key order).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>The name of the graph's one input (default <c>input</c>).</summary>
    public string InputName { get; init; } = "input";

    /// <summary>The name of the graph's one output (default <c>output</c>).</summary>
    public string OutputName { get; init; } = "output";
}
