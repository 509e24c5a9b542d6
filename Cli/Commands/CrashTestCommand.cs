using System.CommandLine;

namespace Cnn.Cli;

/// <summary>
/// <c>cnn internal-crash-test --kind K</c>, hidden from the usage, the help and the suggestions: raises, on purpose, the
/// failures that no correct input reaches, so that the tests can check what a user would see if cnn had such a bug:
/// <c>bug</c> (an unexpected exception, exit 70), <c>thread</c> (an unexpected exception on another thread, exit 70),
/// <c>io</c> (an I/O error on a path, exit 1), <c>denied</c> (access denied on a path, exit 1).
/// </summary>
internal static class CrashTestCommand
{
    public const string Help = """
        usage: cnn internal-crash-test --kind bug|thread|io|denied

        For cnn's own tests: fails on purpose as a bug in cnn would (bug, thread) or as the user's environment can (io, denied).
        examples:
          cnn internal-crash-test --kind bug
        """;

    public static Command Spec { get; } = new("internal-crash-test", Help, [Opt.Choice("kind", "bug", "thread", "io", "denied")], Crash, Hidden: true);

    private static int Crash(Args a)
    {
        switch (Command.Choice(a, "kind", "bug", "bug", "thread", "io", "denied"))
        {
            case "thread":
                var t = new Thread(() => throw new InvalidOperationException("a test failure on a worker thread"));
                t.Start();
                t.Join();
                return 0;
            case "io":
                throw new IOException("The disk is full while writing '/tmp/cnn-crash-test/out.npy'.");
            case "denied":
                throw new UnauthorizedAccessException("Access to the path '/root/cnn-crash-test' is denied.");
            default:
                throw new InvalidOperationException("a test failure in a command");
        }
    }
}
