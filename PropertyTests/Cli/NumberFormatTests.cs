using System.Globalization;
using System.Text.RegularExpressions;
using Cnn.Cli;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace Cnn.Tests.Cli;

/// <summary>Issue 21, item 10: the command line prints numbers one way, in any culture, never as <c>5.72E-006</c>.</summary>
public sealed partial class NumberFormatTests
{
    [GeneratedRegex(@"^-?\d+(\.\d+)?(e[+-]\d{2,3})?$")]
    private static partial Regex PlainOrPythonExponent();

    /// <summary>Values from 1e-40 to 1e40 of either sign, and the awkward ones: zero, powers of ten, float-rounded decimals.</summary>
    private static Gen<double> Values() =>
        Gen.OneOf(
            from m in Gen.Choose(1, 999_999) from e in Gen.Choose(-40, 40) from neg in Gen.Elements(true, false)
            select (neg ? -1 : 1) * m * Math.Pow(10, e - 6),
            from e in Gen.Choose(-12, 12) select Math.Pow(10, e),
            from m in Gen.Choose(0, 100_000) select (double)(m / 1000f),
            Gen.Constant(0.0));

    [CnnProperty]
    public Property GFormatIsInvariantHasTheAskedDigitsAndALowerCaseExponent() =>
        Prop.ForAll((from v in Values() from digits in Gen.Choose(1, 9) select (v, digits)).ToArbitrary(), t =>
        {
            var saved = CultureInfo.CurrentCulture;
            try
            {
                // A culture that writes 0,5 (the tests run in globalization-invariant mode, so no named culture can be had).
                var comma = (CultureInfo)CultureInfo.InvariantCulture.Clone();
                comma.NumberFormat.NumberDecimalSeparator = ",";
                comma.NumberFormat.NegativeSign = "−";
                CultureInfo.CurrentCulture = comma;
                string s = Numbers.G(t.v, t.digits);
                double back = double.Parse(s, CultureInfo.InvariantCulture);
                int significant = s.Split('e')[0].Count(char.IsDigit) - (s.TrimStart('-').StartsWith("0.", StringComparison.Ordinal) ? s.Split('e')[0].TrimStart('-').TakeWhile(c => c is '0' or '.').Count(c => c == '0') : 0);
                return PlainOrPythonExponent().IsMatch(s) && !s.Contains('E')
                    && Math.Abs(back - t.v) <= 0.5 * Math.Pow(10, 1 - t.digits) * Math.Abs(t.v) * 1.0000001
                    && significant <= Math.Max(t.digits, 1);
            }
            finally
            {
                CultureInfo.CurrentCulture = saved;
            }
        });

    [CnnProperty]
    public Property AFloatHasOneJsonTextWhetherItTravelsAsFloatOrDouble() =>
        Prop.ForAll(Values().Select(v => (float)v).Where(float.IsFinite).ToArbitrary(), f =>
        {
            string asFloat = Numbers.Json(f), asDouble = Numbers.Json((double)f);
            return asFloat == asDouble && asFloat == Numbers.Shortest(f) && float.Parse(asFloat, CultureInfo.InvariantCulture) == f && !asFloat.Contains('E');
        });

    [Fact]
    public void JsonEventsWriteFloatsShortAndNonFiniteValuesAsNames()
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["a"] = 0.216f, ["b"] = (double)0.216f, ["c"] = 0.1, ["d"] = float.NaN, ["e"] = 5.72e-6f, ["n"] = 3,
        }, Numbers.JsonOptions);
        Assert.Equal("""{"a":0.216,"b":0.216,"c":0.1,"d":"NaN","e":5.72e-06,"n":3}""", json);
        Assert.Equal(0.216f, System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, float>>("""{"b":0.216}""", Numbers.JsonOptions)!["b"]);
    }
}
