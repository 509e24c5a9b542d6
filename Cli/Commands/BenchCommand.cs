using System.Runtime;
using Cnn.Cli.Bench;
using Cnn.Interop.LibTorch;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn bench</c>: the same work on the im2col backend and on LibTorch (and, for inference, ONNX Runtime) in one process,
/// with the ratios the performance targets of issue 17 are stated in.
/// </summary>
internal static class BenchCommand
{
    public static readonly string Help = $"""
        usage: cnn bench [--quick] [--json] [--threads N] [--only LIST] [--concurrent-gc]

        Times the im2col backend against LibTorch (TorchSharp, the same thread count) in one process, and for inference
        ONNX Runtime too: GEMM at 256/512/1024/2048; conv2d forward and forward+backward on six shapes (the four of
        ../shared/notes/libtorch-on-debian12.md, a 1x1 and a strided one) and three depthwise shapes; max pooling; a training step (forward, backward,
        SGD) of simple-convnet, lenet5, keras-cifar and resnet-mini at batch 64 with its allocation; inference at batch 1 and
        64, and resnet18 at batch 1 (224x224); time
        against batch size (1 to 256) and image size; and the speed-up from 1 to 2 threads on the large shapes.

        Each figure is the median of timed calls after a warm-up; the sides run in alternating blocks, so a change in the
        machine's load moves both. Ratios are speeds: the other side's time over im2col's, above 1 when im2col is faster.
        Allocation is managed bytes per call (all threads). The im2col side of the convolution and pooling rows runs in a
        TensorArena, as the kernels of a training step do, so those rows time the kernels, not the garbage collector's
        fresh pages; inference rows call a compiled InferenceModel (weights packed and batch norm folded once), as a deployed
        model does, and report its allocation per call (its output alone, once the input's shape is bound). Training and
        inference rows warm up for two seconds per side (the JIT's tiers settle), and ONNX Runtime's threads stop spinning
        when its run returns, so they do not hold a core through the other sides' blocks. The report
        starts with the CPU model, its caches, the GEMM blocking chosen for it and a measured FMA peak (independent FMA
        chains, one thread and the run's threads); every GFLOP/s figure is also given as a fraction of that peak. Progress goes to stderr, the report to stdout. A full run
        takes about 4 minutes on 2 idle cores (AMD Zen 3; 2.5 on the Intel Xeon); --quick under one.

        The run uses the garbage collector's batch mode (no background collections), as a compute job should: a training
        step allocates megabytes of tensors, and on two cores a background collection takes a core from the kernels
        (measured: a conv2d forward 1.8x slower at the median). --concurrent-gc keeps .NET's default to compare.

        options:
          --quick        fewer samples and fewer sizes: a smoke test of the whole bench
          --json         the report as one JSON document
          --threads N    threads for every engine, 1 to {Opt.MaxThreads} (4 x the processor count); more than the
                         processor count runs as many as there are processors (default: the processor count)
          --only LIST    comma-separated sections: gemm, conv, pool, train, infer, batch, image, threads (default: all)
          --concurrent-gc  keep .NET's default concurrent (background) garbage collection

        examples:
          cnn bench
          cnn bench --quick --json > bench.json
          cnn bench --only conv,train
        """;

    private static readonly string[] Sections = { "gemm", "conv", "pool", "train", "infer", "batch", "image", "threads" };

    public static Command Spec { get; } = new("bench", Help, [Opt.Flag("quick"), Opt.Json(), Opt.Threads(1), Opt.Text("only"), Opt.Flag("concurrent-gc")], Bench);

    private static int Bench(Args a)
    {
        bool quick = a.Flag("quick"), json = a.Flag("json"), concurrentGc = a.Flag("concurrent-gc");
        int threads = Math.Min(a.Int("threads", Environment.ProcessorCount), Environment.ProcessorCount);
        var only = a.String("only")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? Sections;
        var unknown = only.FirstOrDefault(s => !Sections.Contains(s));
        if (unknown is not null) throw new UsageException($"--only: unknown section '{unknown}'; expected some of {string.Join(", ", Sections)}");

        LibTorchRuntime.EnsureLoaded();
        if (!concurrentGc) GCSettings.LatencyMode = GCLatencyMode.Batch;
        var before = BenchContext.LoadAverage();
        var ctx = new BenchContext(quick ? MeasureSettings.Quick : MeasureSettings.Full, threads, quick, Console.Error);
        BenchContext.UseThreads(threads);
        ctx.Log($"cnn bench: {threads} threads{(quick ? ", quick" : "")}; load average {(before is null ? "unknown" : string.Join(" / ", before))}");
        ctx.Log($"  {ctx.Hardware}");
        if (only.Contains("gemm")) GemmBench.Run(ctx);
        if (only.Contains("conv")) ConvBench.Run(ctx);
        if (only.Contains("pool")) PoolBench.Run(ctx);
        if (only.Contains("train")) NetworkBench.RunTraining(ctx);
        if (only.Contains("infer")) NetworkBench.RunInference(ctx);
        if (only.Contains("batch")) ScalingBench.Batch(ctx);
        if (only.Contains("image")) ScalingBench.Image(ctx);
        if (only.Contains("threads")) ScalingBench.Threads(ctx);
        var machine = MachineInfo.Describe(ctx, before);
        Console.WriteLine(json ? BenchReport.Json(machine, ctx.Rows) : BenchReport.Table(machine, ctx.Rows));
        return 0;
    }
}
