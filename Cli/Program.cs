using Cnn.Cli;
using Cnn.Core;

const string Usage = """
usage: cnn <command> [options]

commands:
  run        the main job: fetch 10,000 real MNIST digits, train SimpleConvNet on 8,000, report held-out
             accuracy on 2,000, export model.onnx, check it in ONNX Runtime and check the network against LibTorch
               --epochs N (8)  --batch-size N (100)  --lr X (0.001, Adam)  --seed N (1)
               --train N (8000)  --test N (2000)  --out DIR (runs/simple-convnet-<time>)  --force (reuse a non-empty --out)
               --quick (1 epoch, 2000/500 digits: a smoke test)
  summary    print a network's layer table      --model NAME (simple-convnet)
  help       print this text

examples:
  cnn run
  cnn run --quick --out /tmp/smoke
  cnn summary --model simple-convnet
""";

if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine(Usage);
    return args.Length == 0 ? 2 : 0;
}
try
{
    var rest = args.Skip(1);
    return args[0] switch
    {
        "run" => MainJob.Run(new Args(rest, new HashSet<string> { "quick", "force" })),
        "summary" => SummaryCommand.Run(new Args(rest, new HashSet<string>())),
        _ => throw new UsageException($"unknown command '{args[0]}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"cnn: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}
catch (CnnException e)
{
    Console.Error.WriteLine($"cnn: error: {e.Message}");
    return 1;
}
