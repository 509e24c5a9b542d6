using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Cnn.Cli;

/// <summary>
/// How the command line prints a real number, in one place: the invariant culture (a German locale must not turn
/// 0.5 into 0,5 in a log a script reads), and an exponent written as Python and NumPy write it (<c>5.72e-06</c>),
/// never .NET's <c>5.72E-006</c> of the "E" format or <c>5.72E-06</c> of "G".
/// </summary>
internal static class Numbers
{
    /// <summary><paramref name="value"/> with at most <paramref name="digits"/> significant digits (G-format).</summary>
    public static string G(double value, int digits = 3) => Exponent(value.ToString("G" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    /// <summary>The shortest text that reads back as the same float (what Python prints for a float32 value).</summary>
    public static string Shortest(float value) => Exponent(value.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>
    /// A figure of training in JSON: the metrics are float32 values, but some travel as double (a CSV row, an
    /// average); a double that holds a float exactly is written as that float's shortest text, so one loss reads
    /// 0.216 in every event rather than 0.216 in one and 0.2160000056028366 in another. Other doubles (seconds)
    /// get their own shortest text. NaN and the infinities are written as the strings "NaN", "Infinity".
    /// </summary>
    public static string Json(double value) =>
        !double.IsFinite(value) ? JsonSerializer.Serialize(value.ToString(CultureInfo.InvariantCulture))
        : (double)(float)value == value ? Shortest((float)value)
        : Exponent(value.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Serializer options whose floats and doubles are written by <see cref="Json"/>.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = new() { Converters = { new DoubleConverter(), new FloatConverter() } };

    private static string Exponent(string text) => text.Replace('E', 'e');

    private sealed class DoubleConverter : JsonConverter<double>
    {
        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options) => writer.WriteRawValue(Json(value), skipInputValidation: true);
    }

    private sealed class FloatConverter : JsonConverter<float>
    {
        public override float Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetSingle();

        public override void Write(Utf8JsonWriter writer, float value, JsonSerializerOptions options) => writer.WriteRawValue(Json(value), skipInputValidation: true);
    }
}
