using System.CommandLine;
using System.CommandLine.Help;
using System.Reflection;
using Cnn.Core;
using Cnn.Dsl;
using ParserCommand = System.CommandLine.Command;

namespace Cnn.Cli;

/// <summary>
/// The <c>cnn</c> program: parses with System.CommandLine, prints the commands' own help texts, turns parse errors into
/// one line with a suggestion (exit 2), and maps what a command throws to an exit code: 1 for a user's error
/// (<see cref="CnnException"/>, or an I/O error naming a path), 70 for anything else, which is a bug in cnn.
/// </summary>
/// <remarks>
/// Why System.CommandLine 3.0.0: it is the parser the .NET SDK's own <c>dotnet</c> command is built on, maintained by
/// the .NET team with the runtime, and 3.0.0 is the newest version the package mirror serves; it restores on net10.0
/// and the API used here (<c>Option&lt;T&gt;</c> with aliases and validators, <c>RootCommand.Parse</c>,
/// <c>ParseResult</c>) is the stable 2.0 API, unchanged. The 2.0.x line would do as well; CommandLineParser 2.9.1
/// and McMaster.Extensions.CommandLineUtils 2.3.0 are older and see little development, and Cocona builds on a
/// hosting stack cnn does not need. The parser gives what the hand-written one lacked: aliases, <c>--name=value</c>,
/// <c>-h</c>/<c>--help</c> on every command, <c>--version</c>, errors for unknown tokens and per-option validators.
/// Its help layout and error printing are not used: the commands keep their hand-written help (descriptions,
/// defaults, examples), and errors stay one line, with a "did you mean" from <see cref="Suggest"/>.
/// </remarks>
internal static class CommandLine
{
    /// <summary>Exit code of a user's or data error.</summary>
    public const int UserError = 1;

    /// <summary>Exit code of a wrong command line.</summary>
    public const int UsageError = 2;

    /// <summary>Exit code of an unexpected exception, a bug in cnn (EX_SOFTWARE of sysexits.h).</summary>
    public const int InternalError = 70;

    /// <summary>The environment variable that, set to 1, prints the stack trace of an unexpected exception (as <c>--debug</c> does).</summary>
    public const string DebugVariable = "CNN_DEBUG";

    public const string Usage = """
        usage: cnn <command> [options]

        commands:
          run        the main job: fetch 10,000 real MNIST digits, train SimpleConvNet on 8,000, report held-out
                     accuracy on 2,000, export model.onnx, check it in ONNX Runtime and check the network against LibTorch
          summary    print a network's layer table
          train      train a zoo network on mnist, IDX, CIFAR-10 or image-folder data into a run folder (checkpoints, metrics, pictures)
          gan        train a DCGAN on the digits or Fashion-MNIST: a sample grid per epoch, the losses, a checkpoint of both
                     networks, and how many generated images a classifier trained here labels with confidence
          lr-find    the learning-rate range test: loss against an exponentially growing rate, a suggested rate, the plot
          gradcam    the Grad-CAM class-activation map of an input at a layer, overlaid on the input as a PNG
          show       make the pictures of a checkpoint (filters, feature maps, confusion matrix, curves)
          convolve   filter an image or a .npy array: true convolution or correlation, modes and boundaries
          params     write every parameter of a network as .npy files named by path ('/' -> '.')
          forward    write a network's output for a .npy input
          grad       write the loss and every parameter's gradient for a .npy input and .npy labels
          export     write a zoo network or a checkpoint as an ONNX model, checked by ONNX Runtime
          import     read an ONNX model (ours, torch.onnx's, ...) into a checkpoint of a trainable layer tree
          predict    run an ONNX model in ONNX Runtime: accuracy on a data set, or outputs for a .npy batch
          verify     compare the im2col backend, LibTorch and ONNX Runtime on a seeded batch: outputs, loss, every gradient, state
          bench      time the im2col backend against LibTorch (and ONNX Runtime) in one process: GEMM, conv, pooling, training steps
          help       print this text; cnn help COMMAND (or cnn COMMAND --help, -h) prints a command's options and examples

        options of every command:
          -h, --help     the help of cnn or of the command
          --debug        print the stack trace of an internal error (also: environment variable CNN_DEBUG=1)
          --version      the version of cnn (alone: cnn --version)

        exit codes: 0 done; 1 a user or data error (one line: cnn: error: ...); 2 a wrong command line (one line and
        the usage); 70 an internal error (a bug in cnn); 130 train or gan stopped by Ctrl+C (its checkpoint resumes it)

        examples:
          cnn run
          cnn run --quick --out /tmp/smoke
          cnn summary --model simple-convnet
          cnn train --epochs 3 --out runs/first
          cnn convolve --input photo.jpg --kernel laplacian --out edges.png
        """;

    /// <summary>Every command, in the order of the usage text; hidden ones last.</summary>
    public static IReadOnlyList<Command> Commands { get; } =
    [
        MainJob.Spec, SummaryCommand.Spec, TrainCommand.Spec, GanCommand.Spec, LrFindCommand.Spec, GradCamCommand.Spec, ShowCommand.Spec,
        ConvolveCommand.Spec, ParamsCommand.Spec, ForwardCommand.Spec, GradCommand.Spec, ExportCommand.Spec, ImportCommand.Spec,
        PredictCommand.Spec, VerifyCommand.Spec, BenchCommand.Spec, CrashTestCommand.Spec,
    ];

    /// <summary>
    /// The version of cnn: that of the library it runs (Cnn.Dsl's informational version, from build/Packaging.props,
    /// with the commit it was built from), so the command and the packages never disagree.
    /// </summary>
    public static string Version =>
        typeof(Zoo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(Zoo).Assembly.GetName().Version?.ToString() ?? "unknown";

    private static int _handlersInstalled;

    /// <summary>Runs <c>cnn</c> with <paramref name="args"/>; returns the exit code.</summary>
    public static int Run(string[] args)
    {
        bool debug = args.Contains("--debug") || Environment.GetEnvironmentVariable(DebugVariable) == "1";
        InstallLastResortHandlers(debug);
        try
        {
            return Dispatch(args);
        }
        catch (Exception e)
        {
            return Report(e, debug);
        }
    }

    /// <summary>
    /// What a command throws, as an exit code and one line on stderr: a <see cref="CnnException"/> or an I/O error
    /// (the user's file or folder) is exit 1; anything else is a bug in cnn, exit 70, with the stack trace only when
    /// <paramref name="debug"/>.
    /// </summary>
    public static int Report(Exception e, bool debug)
    {
        switch (e)
        {
            case CnnException:
                Console.Error.WriteLine($"cnn: error: {OneLine(e.Message)}");
                return UserError;
            case IOException or UnauthorizedAccessException:
                Console.Error.WriteLine($"cnn: error: {OneLine(WithPath(e))}");
                if (debug) Console.Error.WriteLine(e);
                return UserError;
            default:
                Console.Error.WriteLine(BugLine(e, debug));
                if (debug) Console.Error.WriteLine(e);
                return InternalError;
        }
    }

    private static string BugLine(Exception e, bool debug) =>
        $"cnn: internal error (a bug in cnn, please report it): {e.GetType().FullName}: {OneLine(e.Message)}" +
        (debug ? "" : $" (--debug or {DebugVariable}=1 prints the stack trace)");

    private static string WithPath(Exception e)
    {
        var path = e switch { FileNotFoundException f => f.FileName, _ => null };
        return path is not null && !e.Message.Contains(path, StringComparison.Ordinal) ? $"{e.Message} ('{path}')" : e.Message;
    }

    private static string OneLine(string text) => string.Join(' ', text.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));

    /// <summary>
    /// An exception on another thread ends the process whatever a handler does; this handler makes that end one line
    /// and exit 70 instead of the runtime's abort (exit 134). An unobserved faulted task is reported under --debug and
    /// marked observed: the work it belonged to has already reported its own outcome.
    /// </summary>
    private static void InstallLastResortHandlers(bool debug)
    {
        if (Interlocked.Exchange(ref _handlersInstalled, 1) == 1) return;
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            var ex = e.ExceptionObject as Exception ?? new InvalidOperationException($"a non-exception object was thrown: {e.ExceptionObject}");
            bool showStack = debug || Environment.GetEnvironmentVariable(DebugVariable) == "1";
            int code = ex is CnnException or IOException or UnauthorizedAccessException ? UserError : InternalError;
            if (code == UserError) Console.Error.WriteLine($"cnn: error: {OneLine(WithPath(ex))}");
            else Console.Error.WriteLine(BugLine(ex, showStack));
            if (showStack) Console.Error.WriteLine(ex);
            Console.Error.Flush();
            Environment.Exit(code);
        };
        TaskScheduler.UnobservedTaskException += (_, e) =>
        {
            if (debug || Environment.GetEnvironmentVariable(DebugVariable) == "1")
                Console.Error.WriteLine($"cnn: debug: an unobserved task failed: {e.Exception}");
            e.SetObserved();
        };
    }

    private static int Dispatch(string[] args)
    {
        var root = BuildRoot(out var byParser);
        var result = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        var parsed = result.CommandResult.Command;
        var command = byParser.GetValueOrDefault(parsed);

        if (result.Action is HelpAction)
        {
            Console.WriteLine((command?.Help ?? Usage).TrimEnd());
            return 0;
        }
        if (command is null && parsed.Name == "help")
        {
            var topic = result.GetValue<string[]>("topic") ?? [];
            if (topic.Length == 0) { Console.WriteLine(Usage.TrimEnd()); return 0; }
            var named = Commands.FirstOrDefault(c => c.Name == topic[0] && !c.Hidden);
            if (named is null || topic.Length > 1) return UsageFailure(null, UnknownCommand(topic[0]));
            Console.WriteLine(named.Help.TrimEnd());
            return 0;
        }
        if (command is null && result.UnmatchedTokens.Count == 0 && result.GetResult(root.Options.OfType<VersionOption>().First()) is null)
        {
            Console.WriteLine(Usage.TrimEnd());
            return UsageError;
        }
        if (result.Errors.Count > 0) return UsageFailure(command, ErrorLine(result, command));
        if (command is null)
        {
            Console.WriteLine($"cnn {Version}");
            return 0;
        }
        try
        {
            return command.Body(new Args(result, command.Options));
        }
        catch (UsageException e)
        {
            return UsageFailure(command, e.Message);
        }
    }

    private static RootCommand BuildRoot(out Dictionary<ParserCommand, Command> byParser)
    {
        var root = new RootCommand("cnn: convolutional networks: train, summary, verify, export, predict, bench");
        root.Options.Add(new Option<bool>("--debug") { Arity = ArgumentArity.Zero, Recursive = true });
        byParser = new Dictionary<ParserCommand, Command>();
        foreach (var c in Commands)
        {
            var sub = new ParserCommand(c.Name) { Hidden = c.Hidden };
            foreach (var o in c.Options) sub.Options.Add(o);
            root.Subcommands.Add(sub);
            byParser[sub] = c;
        }
        var help = new ParserCommand("help");
        help.Arguments.Add(new Argument<string[]>("topic") { Arity = ArgumentArity.ZeroOrMore });
        root.Subcommands.Add(help);
        return root;
    }

    private static string ErrorLine(ParseResult result, Command? command)
    {
        if (result.UnmatchedTokens.Count > 0)
        {
            var token = result.UnmatchedTokens[0];
            if (token.StartsWith('-'))
            {
                var name = token.Split('=')[0];
                var known = (command?.Options ?? []).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal))
                    .Concat(["--help", "--debug"]).Concat(command is null ? ["--version"] : []);
                return $"unknown option '{name}'{Suggest.DidYouMean(name, known)}";
            }
            return command is null ? UnknownCommand(token) : $"unexpected argument '{token}' (options are written --name VALUE)";
        }
        var error = result.Errors[0];
        if (error.SymbolResult is System.CommandLine.Parsing.OptionResult { Tokens.Count: 0 } missing && missing.Option.Arity.MinimumNumberOfValues > 0)
            return $"option {missing.Option.Name} needs a value";
        return error.Message;
    }

    private static string UnknownCommand(string name) =>
        $"unknown command '{name}'{Suggest.DidYouMean(name, Commands.Where(c => !c.Hidden).Select(c => c.Name).Append("help"))}";

    private static int UsageFailure(Command? command, string message)
    {
        var name = command is null ? "cnn" : $"cnn {command.Name}";
        Console.Error.WriteLine($"{name}: {message}");
        Console.Error.WriteLine(command is null
            ? "usage: cnn <command> [options]; cnn --help lists the commands"
            : $"{command.UsageLine}; {name} --help lists the options and examples");
        return UsageError;
    }
}
