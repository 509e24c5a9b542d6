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
  summary    print a network's layer table      --model NAME (simple-convnet) | --checkpoint F  --json
  train      train a zoo network on mnist, IDX or CIFAR-10 data into a run folder (checkpoints, metrics, pictures)
  lr-find    the learning-rate range test: loss against an exponentially growing rate, a suggested rate, the plot
  gradcam    the Grad-CAM class-activation map of an input at a layer, overlaid on the input as a PNG
  show       make the pictures of a checkpoint (filters, feature maps, confusion matrix, curves)
  convolve   filter an image or a .npy array: true convolution or correlation, modes and boundaries
  params     write every parameter of a network as .npy files named by path ('/' -> '.')
  forward    write a network's output for a .npy input
  grad       write the loss and every parameter's gradient for a .npy input and .npy labels
  export     write a zoo network or a checkpoint as an ONNX model, checked by ONNX Runtime
  predict    run an ONNX model in ONNX Runtime: accuracy on a data set, or outputs for a .npy batch
  verify     compare the im2col backend, LibTorch and ONNX Runtime on a seeded batch: outputs, loss, every gradient, state
  bench      time the im2col backend against LibTorch (and ONNX Runtime) in one process: GEMM, conv, pooling, training steps
  help       print this text (cnn COMMAND --help: a command's options and examples)

examples:
  cnn run
  cnn run --quick --out /tmp/smoke
  cnn summary --model simple-convnet
  cnn train --epochs 3 --out runs/first
  cnn convolve --input photo.jpg --kernel laplacian --out edges.png
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
        "summary" => SummaryCommand.Run(rest),
        "train" => TrainCommand.Run(rest),
        "lr-find" => LrFindCommand.Run(rest),
        "gradcam" => GradCamCommand.Run(rest),
        "show" => ShowCommand.Run(rest),
        "convolve" => ConvolveCommand.Run(rest),
        "params" => ParamsCommand.Run(rest),
        "forward" => ForwardCommand.Run(rest),
        "grad" => GradCommand.Run(rest),
        "export" => ExportCommand.Run(rest),
        "predict" => PredictCommand.Run(rest),
        "verify" => VerifyCommand.Run(rest),
        "bench" => BenchCommand.Run(rest),
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
