using System.Globalization;

namespace Cnn.Dsl.IO;

// Npy's reader of the Python literal a .npy header holds.
public static partial class Npy
{
    /// <summary>A parsed Python tuple (distinct from a list, which a .npy header's shape never is).</summary>
    private sealed record PyTuple(List<object> Items);

    /// <summary>
    /// A parser for the Python literals a .npy header holds: dicts, tuples, lists, strings, integers (with Python 2's
    /// trailing L), True, False and None. Nothing else is accepted; nothing is evaluated.
    /// </summary>
    private sealed class PyLiteral(string text)
    {
        private const int MaxDepth = 16;
        private int _pos;

        public object? ParseWhole()
        {
            var v = Value(0);
            SkipSpace();
            if (_pos != text.Length) throw Error("unexpected text after the literal");
            return v;
        }

        private object? Value(int depth)
        {
            if (depth > MaxDepth) throw Error("nested too deeply");
            SkipSpace();
            if (_pos >= text.Length) throw Error("it ends early");
            char c = text[_pos];
            switch (c)
            {
                case '{':
                {
                    _pos++;
                    var d = new Dictionary<string, object>(StringComparer.Ordinal);
                    while (true)
                    {
                        SkipSpace();
                        if (Peek('}')) break;
                        if (Value(depth + 1) is not string key) throw Error("a dict key is not a string");
                        Expect(':');
                        var v = Value(depth + 1) ?? throw Error($"key '{key}' has the value None");
                        if (!d.TryAdd(key, v)) throw Error($"key '{key}' appears twice");
                        SkipSpace();
                        if (Peek('}')) break;
                        Expect(',');
                    }
                    return d;
                }
                case '(' or '[':
                {
                    char close = c == '(' ? ')' : ']';
                    _pos++;
                    var items = new List<object>();
                    bool comma = false;
                    while (true)
                    {
                        SkipSpace();
                        if (Peek(close)) break;
                        items.Add(Value(depth + 1) ?? throw Error("None inside a sequence"));
                        SkipSpace();
                        if (Peek(close)) { comma = false; break; }
                        Expect(',');
                        comma = true;
                    }
                    // (3) is the integer 3 in Python, not a tuple; a one-element tuple needs its comma.
                    if (c == '(' && items.Count == 1 && !comma) return items[0];
                    return c == '(' ? new PyTuple(items) : items;
                }
                case '\'' or '"':
                {
                    int end = text.IndexOf(c, _pos + 1);
                    if (end < 0) throw Error("a string is not closed");
                    var s = text.Substring(_pos + 1, end - _pos - 1);
                    if (s.Contains('\\')) throw Error("escapes in strings are not supported");
                    _pos = end + 1;
                    return s;
                }
                default:
                    if (char.IsAsciiDigit(c) || c is '-' or '+')
                    {
                        int start = _pos++;
                        while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
                        var digits = text[start.._pos];
                        if (_pos < text.Length && text[_pos] is 'L' or 'l') _pos++;
                        if (!long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
                            throw Error($"'{digits}' is not an integer that fits in 64 bits");
                        return n;
                    }
                    if (Word("True")) return true;
                    if (Word("False")) return false;
                    if (Word("None")) return null;
                    throw Error($"unexpected character '{c}' at offset {_pos}");
            }
        }

        private bool Word(string w)
        {
            if (string.CompareOrdinal(text, _pos, w, 0, w.Length) != 0) return false;
            int after = _pos + w.Length;
            if (after < text.Length && (char.IsAsciiLetterOrDigit(text[after]) || text[after] == '_')) return false;
            _pos = after;
            return true;
        }

        private bool Peek(char c)
        {
            if (_pos < text.Length && text[_pos] == c) { _pos++; return true; }
            return false;
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (!Peek(c)) throw Error(_pos < text.Length ? $"expected '{c}' at offset {_pos}, found '{text[_pos]}'" : $"expected '{c}', found the end");
        }

        private void SkipSpace()
        {
            while (_pos < text.Length && text[_pos] is ' ' or '\t' or '\n' or '\r') _pos++;
        }

        private System.FormatException Error(string what) => new(what);
    }
}
