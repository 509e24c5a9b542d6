using System.Buffers.Binary;
using System.IO.Compression;
using Cnn.Dsl.IO;

namespace Cnn.Cli.Pictures;

/// <summary>
/// A PNG encoder for our own pictures, in managed code (zlib from System.IO.Compression): 8-bit RGB, no
/// interlacing, filter 0 on every row. The same picture always gives the same bytes.
/// </summary>
internal static class Png
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a];
    private static readonly uint[] CrcTable = MakeCrcTable();

    public static byte[] Encode(Raster raster)
    {
        using var ms = new MemoryStream();
        ms.Write(Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, raster.Width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), raster.Height);
        ihdr[8] = 8;  // bits per sample
        ihdr[9] = 2;  // colour type: RGB
        Chunk(ms, "IHDR", ihdr);
        using (var z = new MemoryStream())
        {
            using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true))
            {
                int row = raster.Width * 3;
                for (int y = 0; y < raster.Height; y++)
                {
                    zs.WriteByte(0);
                    zs.Write(raster.Pixels, y * row, row);
                }
            }
            Chunk(ms, "IDAT", z.ToArray());
        }
        Chunk(ms, "IEND", []);
        return ms.ToArray();
    }

    /// <summary>Writes the picture atomically.</summary>
    public static void Save(string path, Raster raster) => AtomicFile.WriteAllBytes(path, Encode(raster));

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> b4 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b4, data.Length);
        s.Write(b4);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        uint crc = Crc(Crc(0xffffffffu, typeBytes), data) ^ 0xffffffffu;
        BinaryPrimitives.WriteUInt32BigEndian(b4, crc);
        s.Write(b4);
    }

    private static uint Crc(uint crc, byte[] data)
    {
        foreach (var b in data) crc = CrcTable[(crc ^ b) & 0xff] ^ (crc >> 8);
        return crc;
    }

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
