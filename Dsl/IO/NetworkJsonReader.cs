using System.Text.Json;
using Cnn.Core;
using FormatException = Cnn.Core.FormatException;

namespace Cnn.Dsl.IO;

// NetworkJson, the checked access to JSON objects that reading goes through.
public static partial class NetworkJson
{
    /// <summary>Checked access to JSON objects: each property read once, every property read, types and ranges checked.</summary>
    private static class Reader
    {
        public sealed class Obj
        {
            private readonly string _path, _source;
            private readonly Dictionary<string, JsonElement> _props = new(StringComparer.Ordinal);
            private readonly List<string> _order = new();
            private readonly HashSet<string> _read = new(StringComparer.Ordinal);

            public Obj(JsonElement e, string path, string source)
            {
                _path = path;
                _source = source;
                if (e.ValueKind != JsonValueKind.Object) throw Fail(path, $"expected an object; found {Describe(e)}");
                foreach (var p in e.EnumerateObject())
                {
                    if (!_props.TryAdd(p.Name, p.Value)) throw Fail(Path(p.Name), "the property appears twice");
                    _order.Add(p.Name);
                }
            }

            public FormatException Error(string? prop, string message) => Fail(prop is null ? _path : Path(prop), message);

            /// <summary>Refuses properties that were not read.</summary>
            public void End()
            {
                foreach (var name in _order)
                    if (!_read.Contains(name)) throw Fail(Path(name), "unexpected property");
            }

            private JsonElement Get(string prop)
            {
                if (!_props.TryGetValue(prop, out var e)) throw Fail(Path(prop), "missing property");
                _read.Add(prop);
                return e;
            }

            public bool IsNull(string prop) => Get(prop).ValueKind == JsonValueKind.Null;

            public string String(string prop)
            {
                var e = Get(prop);
                if (e.ValueKind != JsonValueKind.String) throw Fail(Path(prop), $"expected a string; found {Describe(e)}");
                string s;
                try { s = e.GetString()!; }
                catch (InvalidOperationException ex) { throw new FormatException($"'{_source}': {Path(prop)}: the string is not valid Unicode.", ex); }
                for (int i = 0; i < s.Length; i++)
                    if (char.IsSurrogate(s[i]) && !(i + 1 < s.Length && char.IsSurrogatePair(s[i], s[i + 1]) && i++ >= 0))
                        throw Fail(Path(prop), "the string is not valid Unicode (a lone surrogate)");
                return s;
            }

            public string? NullableString(string prop) => IsNull(prop) ? null : String(prop);

            public bool Bool(string prop)
            {
                var e = Get(prop);
                return e.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw Fail(Path(prop), $"expected true or false; found {Describe(e)}"),
                };
            }

            public int Int(string prop, int min, int max) => IntValue(Get(prop), Path(prop), min, max);

            /// <summary>Whether the object has the property (for properties that older files lack).</summary>
            public bool Has(string prop) => _props.ContainsKey(prop);

            /// <summary>
            /// A value per axis: one integer for every axis, or an array of <paramref name="rank"/> integers; a missing property
            /// gives <paramref name="fallback"/> on every axis when there is one.
            /// </summary>
            public int[] Axes(string prop, int rank, int min, int max, int? fallback)
            {
                if (fallback is { } f && !Has(prop)) return Enumerable.Repeat(f, rank).ToArray();
                var e = Get(prop);
                var path = Path(prop);
                if (e.ValueKind == JsonValueKind.Number) return Enumerable.Repeat(IntValue(e, path, min, max), rank).ToArray();
                if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != rank)
                    throw Fail(path, $"expected an integer or an array of {rank} integers; found {Describe(e)}");
                return e.EnumerateArray().Select((item, i) => IntValue(item, $"{path}[{i}]", min, max)).ToArray();
            }

            public float Float(string prop, float min, float max, string expected)
            {
                var e = Get(prop);
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetSingle(out var v) || !float.IsFinite(v) || v < min || v > max)
                    throw Fail(Path(prop), $"expected {expected}; found {Describe(e)}");
                return v;
            }

            public Obj Object(string prop) => new(Get(prop), Path(prop), _source);

            public Obj[] Array(string prop)
            {
                var e = Get(prop);
                if (e.ValueKind != JsonValueKind.Array) throw Fail(Path(prop), $"expected an array; found {Describe(e)}");
                return e.EnumerateArray().Select((item, i) => new Obj(item, $"{Path(prop)}[{i}]", _source)).ToArray();
            }

            /// <summary>An array of dimensions (integers >= 0) forming a valid shape.</summary>
            /// <summary>An array of integers, each in <c>[min, max]</c>.</summary>
            public int[] Ints(string prop, int min, int max)
            {
                var e = Get(prop);
                var path = Path(prop);
                if (e.ValueKind != JsonValueKind.Array) throw Fail(path, $"expected an array of integers; found {Describe(e)}");
                return e.EnumerateArray().Select((item, i) => IntValue(item, $"{path}[{i}]", min, max)).ToArray();
            }

            public Shape Dims(string prop)
            {
                var e = Get(prop);
                var path = Path(prop);
                if (e.ValueKind != JsonValueKind.Array) throw Fail(path, $"expected an array of dimensions; found {Describe(e)}");
                var dims = e.EnumerateArray().Select((item, i) => IntValue(item, $"{path}[{i}]", 0, int.MaxValue)).ToArray();
                try { return new Shape(dims); }
                catch (ShapeException ex) { throw new FormatException($"'{_source}': {path}: {ex.Message}", ex); }
            }

            private int IntValue(JsonElement e, string path, int min, int max)
            {
                string range = min == int.MinValue ? "an integer" : max == int.MaxValue ? $"an integer >= {min}" : $"an integer in [{min}, {max}]";
                if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var v) || v < min || v > max)
                    throw Fail(path, $"expected {range}; found {Describe(e)}");
                return v;
            }

            private string Path(string prop) =>
                prop.Length > 0 && prop.All(char.IsAsciiLetterOrDigit) ? $"{_path}.{prop}" : $"{_path}[\"{JsonEncodedText.Encode(prop)}\"]";

            private FormatException Fail(string path, string message) => new($"'{_source}': {path}: {message}.");

            private static string Describe(JsonElement e)
            {
                string text = e.GetRawText();
                if (text.Length > 40) text = text[..40] + "...";
                return e.ValueKind switch
                {
                    JsonValueKind.Object => "an object",
                    JsonValueKind.Array => "an array",
                    JsonValueKind.String => "the string " + text,
                    JsonValueKind.Number => text,
                    _ => text,
                };
            }
        }
    }
}
