using Cnn.Dsl;

namespace Cnn.Cli;

/// <summary>The <c>--optimizer</c> words of <c>train</c> and <c>lr-find</c>, and the update rule each names.</summary>
internal static class OptimizerChoice
{
    /// <summary>The words, in the order help texts list them.</summary>
    public static readonly string[] Names = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"];

    /// <summary>The help text's list: <c>sgd | momentum (0.9) | …</c>.</summary>
    public const string Help = "sgd | momentum (0.9) | nesterov (0.9) | adam | adamw (decay 0.01) | rmsprop (alpha 0.99)";

    /// <summary>The default learning rate for <paramref name="name"/>: PyTorch's for the adaptive rules, 0.05 for SGD.</summary>
    public static float DefaultRate(string name) => name switch
    {
        "adam" or "adamw" => 1e-3f,
        "rmsprop" => 1e-2f,
        _ => 0.05f,
    };

    /// <summary>The rule <paramref name="name"/> (one of <see cref="Names"/>) at rate <paramref name="lr"/>.</summary>
    public static Optimizer Create(string name, float lr) => name switch
    {
        "sgd" => new Sgd(lr),
        "momentum" => new Sgd(lr, 0.9f),
        "nesterov" => new Sgd(lr, 0.9f, Nesterov: true),
        "adamw" => new AdamW(lr),
        "rmsprop" => new RmsProp(lr),
        _ => new Adam(lr),
    };
}
