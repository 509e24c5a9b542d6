/// Adversarial training through the F# surface: the same bits as the C# trainer (with a learning-rate schedule too), and a
/// saved checkpoint resumes exactly.
module Cnn.Tests.FSharp.GanTests

open System
open System.IO
open Cnn.Core
open Cnn.Dsl
open Cnn.FSharp
open Xunit

let private images =
    let rng = Random 5
    // 24 images of a bright bar at row 2 (i % 10) + 4 over faint noise, in the tanh range [-1, 1].
    Array.init (24 * 784) (fun k -> if k % 784 / 28 = 2 * (k / 784 % 10) + 4 then 1.0f else float32 (rng.NextDouble() * 0.2 - 1.0))
    |> fun d -> Tensor.FromArray(d, 24, 1, 28, 28)

let private options epochs =
    { GanOptions.dcgan epochs with BatchSize = 8; Seed = 3; RealLabelSmoothing = 0.1; GeneratorAverageDecay = 0.99 }

let private same (a: Parameters) (b: Parameters) =
    Assert.Equal<string seq>(a.Paths, b.Paths)
    for path in a.Paths do
        Assert.True((a[path].ToArray() = b[path].ToArray()), path)

[<Fact>]
let ``Gan.fit trains the bits the C# trainer trains and its checkpoint resumes exactly`` () =
    let g = Cnn.Dsl.Zoo.DcganGenerator(8, 4) |> Model.init 1
    let d = Cnn.Dsl.Zoo.DcganDiscriminator 4 |> Model.init 2
    let epochs = ResizeArray<GanEpoch>()
    let full = Gan.fit { options 2 with OnEpoch = epochs.Add } images g d
    Assert.Equal(2, full.History.Length)
    Assert.Equal<GanEpoch list>(full.History, List.ofSeq epochs)
    Assert.All(full.History, fun e -> Assert.True(Double.IsFinite e.DiscriminatorLoss && Double.IsFinite e.GeneratorLoss))
    let csharp =
        GanTrainer.Fit(Cnn.Dsl.Model(g.Network, g.Parameters, g.State), Cnn.Dsl.Model(d.Network, d.Parameters, d.State), images,
            Cnn.Dsl.GanOptions(2, 8, Cnn.Dsl.Adam(2e-4f, 0.5f), Cnn.Dsl.Adam(2e-4f, 0.5f), 3, RealLabelSmoothing = 0.1f,
                GeneratorAverageDecay = 0.99f))
    same csharp.Generator.Parameters full.Generator.Parameters
    same csharp.AveragedGenerator.Parameters full.AveragedGenerator.Value.Parameters
    same csharp.Discriminator.Parameters full.Discriminator.Parameters
    // The schedule reaches the trainer: a decaying run is the C# one with the same schedule, and not the constant one.
    let decaying = Gan.fit { options 2 with Schedule = Some(Schedule.linearDecay 0.5) } images g d
    let csharpDecaying =
        GanTrainer.Fit(Cnn.Dsl.Model(g.Network, g.Parameters, g.State), Cnn.Dsl.Model(d.Network, d.Parameters, d.State), images,
            Cnn.Dsl.GanOptions(2, 8, Cnn.Dsl.Adam(2e-4f, 0.5f), Cnn.Dsl.Adam(2e-4f, 0.5f), 3, RealLabelSmoothing = 0.1f,
                GeneratorAverageDecay = 0.99f, Schedule = Cnn.Dsl.Schedule.LinearDecay 0.5))
    same csharpDecaying.Generator.Parameters decaying.Generator.Parameters
    Assert.False((full.Generator.Parameters["deconv1/weight"].ToArray() = decaying.Generator.Parameters["deconv1/weight"].ToArray()), "the decay changed nothing")

    let first = Gan.fit (options 1) images g d
    let file = Path.Combine(Path.GetTempPath(), $"fsharp-gan-{Guid.NewGuid():N}.safetensors")
    try
        Gan.saveCheckpoint file first
        let rest = Gan.fit { options 2 with Resume = Some(Gan.loadCheckpoint file) } images g d
        same full.Generator.Parameters rest.Generator.Parameters
        same full.Discriminator.State rest.Discriminator.State
        same full.AveragedGenerator.Value.Parameters rest.AveragedGenerator.Value.Parameters
        let samples = Gan.generate (Gan.noise 7 5 rest.Generator) rest.Generator
        Assert.True((Shape(5, 1, 28, 28) = samples.Shape), string samples.Shape)
    finally
        File.Delete file
