using System.Diagnostics;
using System.IO.Compression;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;
using Xunit.Abstractions;

namespace Cnn.Tests.Packaging;

/// <summary>
/// <c>dotnet pack</c> of the libraries into a local folder, then a fresh console project that installs Cnn.Dsl and
/// Cnn.Onnx from that folder alone (the registry serves only their dependencies), trains a small network for one
/// step, exports it to ONNX and runs it in ONNX Runtime. Slow (a pack, a restore and a build of a new project: about
/// a minute on two cores), so it carries the trait <c>Category=Slow</c>; CI runs every test, this one included.
/// </summary>
[Trait("Category", "Slow")]
public sealed class PackagesInstallTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(8);

    /// <summary>The packable projects and their package ids.</summary>
    public static readonly (string Project, string Id)[] Packages =
    [
        ("Core.CSharp/Core.CSharp.csproj", "Cnn.Core"),
        ("Dsl/Dsl.csproj", "Cnn.Dsl"),
        ("Interop/Interop.FSharp/Interop.FSharp.fsproj", "Cnn.FSharp"),
        ("OnnxExport/OnnxExport.csproj", "Cnn.Onnx"),
        ("Interop/Interop.LibTorch/Interop.LibTorch.csproj", "Cnn.Interop.LibTorch"),
    ];

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("cnn-packages");

    public void Dispose() => _dir.Delete(true);

    private string P(params string[] parts) => Path.Combine([_dir.FullName, .. parts]);

    private (int Code, string Output) Dotnet(string cwd, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        // A private global-packages folder: the Cnn packages are extracted from this run's feed, never from a stale cache.
        var r = RepoProcess.Dotnet(cwd, Timeout, new Dictionary<string, string> { ["NUGET_PACKAGES"] = P("packages") }, args);
        output.WriteLine($"dotnet {string.Join(' ', args)}: exit {r.Code} in {clock.Elapsed.TotalSeconds:F1} s");
        return r;
    }

    [Fact]
    public void TheLibrariesPackWithMetadataAndInstallFromALocalFolderIntoAFreshConsoleProject()
    {
        var total = Stopwatch.StartNew();
        var feed = Directory.CreateDirectory(P("feed")).FullName;
        foreach (var (project, _) in Packages)
        {
            // The test project's build has just built every library in this configuration.
            var (code, log) = Dotnet(RepoProcess.Root, "pack", Path.Combine(RepoProcess.Root, project), "-c", RepoProcess.Configuration, "--no-build", "-o", feed);
            Assert.True(code == 0, log);
        }
        foreach (var (project, id) in Packages) CheckPackage(feed, id);

        var app = Directory.CreateDirectory(P("app")).FullName;
        var created = Dotnet(app, "new", "console", "--name", "App", "--output", app, "--no-restore");
        Assert.True(created.Code == 0, created.Output);
        File.WriteAllText(Path.Combine(app, "nuget.config"), NugetConfig(feed));
        var csproj = Path.Combine(app, "App.csproj");
        File.WriteAllText(csproj, File.ReadAllText(csproj).Replace("</Project>", """
              <ItemGroup>
                <PackageReference Include="Cnn.Dsl" Version="0.1.0" />
                <PackageReference Include="Cnn.Onnx" Version="0.1.0" />
              </ItemGroup>
            </Project>
            """, StringComparison.Ordinal));
        File.WriteAllText(Path.Combine(app, "Program.cs"), AppProgram);
        var run = Dotnet(app, "run", "--project", csproj);
        output.WriteLine(run.Output);
        Assert.True(run.Code == 0, run.Output);
        Assert.Matches(@"loss before \d\.\d{4}, after one step \d\.\d{4}", run.Output);
        Assert.Contains("one step lowered the loss: True", run.Output);
        Assert.Matches(@"output \[4, 3\]: -?\d", run.Output);
        Assert.Contains("ONNX Runtime agrees: True", run.Output);

        // The Cnn packages came from the local folder, extracted into this test's own packages folder.
        var assets = File.ReadAllText(Path.Combine(app, "obj", "project.assets.json"));
        Assert.Contains("\"Cnn.Dsl/0.1.0\"", assets);
        Assert.True(Directory.Exists(P("packages", "cnn.dsl", "0.1.0")), "Cnn.Dsl was not installed into the test's packages folder");
        Assert.Equal(File.ReadAllBytes(Path.Combine(feed, "Cnn.Dsl.0.1.0.nupkg")), File.ReadAllBytes(P("packages", "cnn.dsl", "0.1.0", "cnn.dsl.0.1.0.nupkg")));
        output.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>A package and its symbols: id, version 0.1.0, authors, MIT, readme, description, no repository URL, the assembly with its XML documentation.</summary>
    private static void CheckPackage(string feed, string id)
    {
        var nupkg = Path.Combine(feed, $"{id}.0.1.0.nupkg");
        Assert.True(File.Exists(nupkg), $"{nupkg} is missing");
        Assert.True(File.Exists(Path.Combine(feed, $"{id}.0.1.0.snupkg")), $"{id}: no symbol package");
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToHashSet();
        Assert.Contains("README.md", names);
        Assert.Contains($"lib/net10.0/{id}.dll", names);
        Assert.Contains($"lib/net10.0/{id}.xml", names);
        using var nuspecStream = zip.GetEntry($"{id}.nuspec")!.Open();
        var nuspec = XDocument.Load(nuspecStream);
        var ns = nuspec.Root!.Name.Namespace;
        var meta = nuspec.Root.Element(ns + "metadata")!;
        string? Field(string name) => meta.Element(ns + name)?.Value;
        Assert.Equal(id, Field("id"));
        Assert.Equal("0.1.0", Field("version"));
        Assert.False(string.IsNullOrWhiteSpace(Field("authors")), $"{id}: no authors");
        Assert.True((Field("description") ?? "").Length > 40, $"{id}: no real description");
        Assert.Equal("MIT", Field("license"));
        Assert.Equal("expression", meta.Element(ns + "license")!.Attribute("type")!.Value);
        Assert.Equal("README.md", Field("readme"));
        Assert.Null(meta.Element(ns + "projectUrl"));
        Assert.Null(meta.Element(ns + "repository")?.Attribute("url"));
        using var readme = new StreamReader(zip.GetEntry("README.md")!.Open());
        Assert.StartsWith("# ", readme.ReadToEnd());
    }

    /// <summary>
    /// The local folder for the Cnn packages only, and the registries this machine is configured with for everything
    /// else (package source mapping); the machine's package cache as a fallback folder, so nothing it holds is fetched.
    /// </summary>
    private string NugetConfig(string feed)
    {
        var listed = Dotnet(_dir.FullName, "nuget", "list", "source", "--format", "detailed");
        Assert.True(listed.Code == 0, listed.Output);
        var sources = Regex.Matches(listed.Output, @"^\s*\d+\.\s+(.+?) \[Enabled\]\s*\r?\n\s*(\S+)", RegexOptions.Multiline)
            .Select(m => (Key: m.Groups[1].Value.Trim(), Url: m.Groups[2].Value)).Where(s => s.Key != "local").ToList();
        var cache = RepoProcess.Dotnet(_dir.FullName, Timeout, null, "nuget", "locals", "global-packages", "--list");
        var cacheDir = Regex.Match(cache.Output, @"global-packages:\s*(\S.*)").Groups[1].Value.Trim();
        var fallback = Directory.Exists(Path.Combine(cacheDir, "cnn.dsl")) || !Directory.Exists(cacheDir) ? "" : $"""
              <fallbackPackageFolders>
                <add key="machine-cache" value="{cacheDir}" />
              </fallbackPackageFolders>
            """;
        return $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
            {string.Concat(sources.Select(s => $"    <add key=\"{s.Key}\" value=\"{s.Url}\" />\n"))}  </packageSources>
              <packageSourceMapping>
                <packageSource key="local">
                  <package pattern="Cnn.*" />
                </packageSource>
            {string.Concat(sources.Select(s => $"    <packageSource key=\"{s.Key}\">\n      <package pattern=\"*\" />\n    </packageSource>\n"))}  </packageSourceMapping>
            {fallback}
            </configuration>
            """;
    }

    private const string AppProgram = """
        using Cnn.Core;
        using Cnn.Dsl;
        using Cnn.Dsl.Data;
        using Cnn.Onnx;

        var net = Network.Create(
            new Serial(new Conv2d(4, 3, 3), new Relu(), new MaxPool2d(2, 2, 2, 2), new Flatten(), new Dense(3)),
            new Shape(1, 8, 8));
        Console.Write(Summary.Format(net));
        var rng = new Random(1);
        var images = Tensor.FromArray(Enumerable.Range(0, 4 * 64).Select(_ => (float)rng.NextDouble()).ToArray(), 4, 1, 8, 8);
        var data = new LabeledData(images, [0, 1, 2, 1], 3);
        var init = Initializer.Init(net, 1);
        var trained = Trainer.Fit(net, init, data, new TrainOptions(Epochs: 1, BatchSize: 4, Optimizer: new Sgd(0.1f)));
        float before = Trainer.Evaluate(net, init, data).Loss, after = Trainer.Evaluate(net, trained.Parameters, data).Loss;
        Console.WriteLine($"loss before {before:F4}, after one step {after:F4}");
        Console.WriteLine($"one step lowered the loss: {after < before}");
        var y = Apply.Forward(net, trained.Parameters, images);
        Console.WriteLine($"output {y.Shape}: {string.Join(" ", y.ToArray().Take(3).Select(v => v.ToString("F4")))} ...");
        using var onnx = new OnnxPredictor(OnnxExporter.ToBytes(net, trained.Parameters));
        var z = onnx.Run(images);
        Console.WriteLine($"ONNX Runtime agrees: {y.ToArray().Zip(z.ToArray()).All(p => Math.Abs(p.First - p.Second) < 1e-4f)}");
        """;
}
