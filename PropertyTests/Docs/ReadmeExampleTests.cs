using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Dsl;
using Cnn.Tests.Packaging;
using Xunit;

namespace Cnn.Tests.Docs;

/// <summary>
/// The main README's C# and F# examples are the programs in <c>examples/ReadmeCSharp</c> and <c>examples/ReadmeFSharp</c>,
/// character for character, and those programs run: LeNet-5 with batch norm trained for 3 epochs on 8,000 real digits
/// (about 10 s each), saved, exported to ONNX and loaded back, the two languages giving bitwise-equal weights.
/// </summary>
public class ReadmeExampleTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);

    /// <summary>The fenced block of one language in the README's section "The same network in C# and F#".</summary>
    private static string Block(string language) => Block("The same network in C# and F#", language);

    /// <summary>The one fenced block of <paramref name="language"/> in the README's section <paramref name="heading"/>.</summary>
    internal static string Block(string heading, string language)
    {
        var readme = File.ReadAllText(Path.Combine(RepoProcess.Root, "README.md")).ReplaceLineEndings("\n");
        int start = readme.IndexOf("## " + heading, StringComparison.Ordinal);
        Assert.True(start >= 0, $"README.md has no section '{heading}'");
        int end = readme.IndexOf("\n## ", start + 3, StringComparison.Ordinal);
        var section = end < 0 ? readme[start..] : readme[start..end];
        var blocks = Regex.Matches(section, "```" + language + "\n(.*?)```", RegexOptions.Singleline);
        Assert.True(blocks.Count == 1, $"README.md: expected one ```{language} block in the section; found {blocks.Count}");
        return blocks[0].Groups[1].Value;
    }

    internal static string Source(string relative) =>
        File.ReadAllText(Path.Combine(RepoProcess.Root, relative)).ReplaceLineEndings("\n");

    [Fact]
    public void TheReadmeExamplesAreTheExampleProgramsVerbatim()
    {
        Assert.Equal(Source("examples/ReadmeCSharp/Program.cs"), Block("csharp"));
        Assert.Equal(Source("examples/ReadmeFSharp/Program.fs"), Block("fsharp"));
    }

    [Fact]
    public void TheReadmeExamplesRunAndTheTwoLanguagesTrainTheSameWeights()
    {
        var csharp = Run("examples/ReadmeCSharp/ReadmeCSharp.csproj");
        var fsharp = Run("examples/ReadmeFSharp/ReadmeFSharp.fsproj");
        try
        {
            foreach (var (dir, output) in new[] { csharp, fsharp })
            {
                var accuracy = Regex.Match(output, @"held-out accuracy (\d\.\d+)");
                Assert.True(accuracy.Success, output);
                Assert.True(double.Parse(accuracy.Groups[1].Value, CultureInfo.InvariantCulture) > 0.9, output);
                Assert.Contains("Epoch 3/3", output);
                Assert.True(new FileInfo(Path.Combine(dir, "lenet5.onnx")).Length > 0, "no lenet5.onnx");
                Assert.Matches(@"(?m)^\d( \d){9}\s*$", output);
            }
            var a = Model.Load(Path.Combine(csharp.Dir, "lenet5.safetensors"));
            var b = Model.Load(Path.Combine(fsharp.Dir, "lenet5.safetensors"));
            Assert.Equal(a.Network, b.Network);
            Assert.Contains("bn1/running_mean", a.State.Paths);
            foreach (var (path, t) in a.Parameters.Entries.Concat(a.State.Entries))
                Assert.Equal(t.ToArray(), (a.Parameters.Contains(path) ? b.Parameters : b.State)[path].ToArray());
        }
        finally
        {
            Directory.Delete(csharp.Dir, true);
            Directory.Delete(fsharp.Dir, true);
        }
    }

    /// <summary>Runs an example project (built with the solution) in a fresh folder with <paramref name="arguments"/>: the folder and the output.</summary>
    internal static (string Dir, string Output) Run(string project, params string[] arguments)
    {
        var dir = Directory.CreateTempSubdirectory("cnn-readme").FullName;
        var (code, output) = RepoProcess.Dotnet(dir, Timeout, null, ["run", "--no-build", "-c", RepoProcess.Configuration,
            "--project", Path.Combine(RepoProcess.Root, project), "--", .. arguments]);
        Assert.True(code == 0, $"{project} exited with {code}:\n{output}");
        return (dir, output);
    }
}
