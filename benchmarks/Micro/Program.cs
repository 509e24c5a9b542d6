using BenchmarkDotNet.Running;

// Runs the benchmarks BenchmarkDotNet's command line selects, e.g. `--filter '*Conv*'` or `--list flat`.
BenchmarkSwitcher.FromAssembly(typeof(Cnn.Benchmarks.GemmBenchmarks).Assembly).Run(args);
