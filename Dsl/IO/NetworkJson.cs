namespace Cnn.Dsl.IO;

/// <summary>
/// A network description as self-describing JSON, so that a file (a checkpoint's metadata, a model directory) carries
/// its network. A network reads
/// <c>{"format":"cnn-dsl-network/1","input":[1,28,28],"strict":false,"layer":{...}}</c>; each layer is an object
/// <c>{"type":"Conv2d","name":"conv1","weightInit":null,"filters":30,"kernelH":5,...}</c> with every property of its
/// record written, defaults included (camelCase; enums as lower-case strings; a weight initialisation as
/// <c>null</c>, <c>{"scheme":"he_normal"}</c> or <c>{"scheme":"normal","std":0.02}</c>); combinators hold their
/// children (<c>layers</c>, <c>branches</c>, <c>block</c>/<c>shortcut</c>, <c>inner</c>).
/// Reading checks everything (types, missing and extra properties, ranges, nesting) and reports the JSON path.
/// </summary>
public static partial class NetworkJson
{
    /// <summary>The value of the <c>format</c> property of a network description.</summary>
    public const string Format = "cnn-dsl-network/1";

    /// <summary>The environment variable that sets <see cref="MaxBytes"/>.</summary>
    public const string MaxBytesVariable = "CNN_MAX_NETWORK_JSON_BYTES";

    /// <summary>
    /// The largest network description read from a file: <c>CNN_MAX_NETWORK_JSON_BYTES</c> when set, else 4 MiB (the
    /// zoo's largest network is a few kilobytes; 4 MiB is some 40,000 layers).
    /// </summary>
    public static long MaxBytes => InputFile.Limit(MaxBytesVariable, 4L << 20);

    /// <summary>The most layers (leaves and combinators) a description may hold; more is refused as it is read, before the network is built.</summary>
    public const int MaxLayers = 100_000;

    /// <summary>The deepest layer nesting written or read (the root layer is at depth 1); deeper descriptions are refused.</summary>
    public const int MaxDepth = 64;

    /// <summary>JSON nesting allowed by the parser: two levels per layer (object and child array), plus the wrapper and leaves' values.</summary>
    private const int MaxJsonDepth = 2 * MaxDepth + 8;
}
