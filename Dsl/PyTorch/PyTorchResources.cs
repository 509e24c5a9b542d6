namespace Cnn.Dsl.PyTorch;

/// <summary>The Python files the PyTorch writer carries as embedded resources (written as .py files, so they can be read and linted).</summary>
internal static class PyTorchResources
{
    /// <summary>The text of <c>Dsl/PyTorch/NAME</c>.</summary>
    public static string Text(string name)
    {
        using var stream = typeof(PyTorchResources).Assembly.GetManifestResourceStream("Cnn.Dsl.PyTorch." + name)
            ?? throw new InvalidOperationException($"The resource Cnn.Dsl.PyTorch.{name} is missing from the assembly.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Replace("\r\n", "\n", StringComparison.Ordinal);
    }
}
