using System.Globalization;
using FsCheck.Xunit;

namespace Cnn.Tests;

/// <summary>
/// How many cases a property runs: at least <see cref="Minimum"/> (CI's floor), raised for a long run by the environment
/// variable <see cref="Variable"/> (for example <c>CNN_PROPERTY_RUNS=2000 dotnet test ...</c>).
/// </summary>
public static class PropertyRuns
{
    /// <summary>The environment variable that raises every <see cref="CnnPropertyAttribute"/> property's case count.</summary>
    public const string Variable = "CNN_PROPERTY_RUNS";

    /// <summary>The least number of cases any property runs (the "at least 100 cases a property in CI").</summary>
    public const int Minimum = 100;

    /// <summary>
    /// The cases to run for a property that asks for <paramref name="runs"/>: the largest of <paramref name="runs"/>,
    /// <see cref="Minimum"/> and the value of <see cref="Variable"/> when it is set.
    /// </summary>
    /// <exception cref="InvalidOperationException">The variable is set to something other than a positive integer (a typo must not silently run the default).</exception>
    public static int Cases(int runs = Minimum) => Math.Max(Math.Max(runs, Minimum), FromEnvironment());

    /// <summary>The value of <see cref="Variable"/>, or 0 when it is unset or empty.</summary>
    public static int FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(text)) return 0;
        if (int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0) return n;
        throw new InvalidOperationException($"{Variable}: expected a positive integer number of property cases; found '{text}'.");
    }
}

/// <summary>
/// An FsCheck property (as <see cref="PropertyAttribute"/>) whose case count is <see cref="PropertyRuns.Cases"/>: at least
/// 100, more when the property asks for more, and at least <c>CNN_PROPERTY_RUNS</c> when that is set. Use it instead of
/// <c>[Property(MaxTest = N)]</c>; do not also set <see cref="PropertyAttribute.MaxTest"/>, which would override it.
/// </summary>
/// <remarks>
/// FsCheck.Xunit reads the configuration from the attribute instance (its <c>Config</c>, which the <c>MaxTest</c> setter
/// fills), so a value set in this constructor is what runs; an assembly- or class-level <c>[Properties]</c> could not do
/// this, since a method's own <c>MaxTest</c> overrides it.
/// </remarks>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class CnnPropertyAttribute : PropertyAttribute
{
    /// <summary>At least <see cref="PropertyRuns.Minimum"/> cases, or the environment's count if higher.</summary>
    public CnnPropertyAttribute() : this(PropertyRuns.Minimum) { }

    /// <summary>At least <paramref name="runs"/> cases (and never fewer than <see cref="PropertyRuns.Minimum"/>), or the environment's count if higher.</summary>
    /// <param name="runs">The cases this property asks for in an ordinary run.</param>
    public CnnPropertyAttribute(int runs) => MaxTest = PropertyRuns.Cases(runs);

    /// <summary>The number of cases this property runs.</summary>
    public int Runs => MaxTest;
}
