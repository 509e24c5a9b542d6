using Cnn.Dsl;

namespace Cnn.Cli;

/// <summary><c>cnn summary</c>: the Keras-style table of a zoo network.</summary>
internal static class SummaryCommand
{
    public static int Run(Args args)
    {
        var name = args.String("model") ?? "simple-convnet";
        args.RejectUnknown();
        var net = Zoo.ByName(name);
        Console.WriteLine($"Network '{name}', input (N, {string.Join(", ", net.InputShape)})");
        Console.Write(Summary.Format(net));
        return 0;
    }
}
