using System.Runtime.InteropServices;

namespace Cnn.Tests.Reliability.Fuzz;

/// <summary>The few POSIX calls the hostile corpus needs that .NET does not offer: FIFOs, byte (non-UTF-8) names, a non-blocking open.</summary>
internal static partial class Libc
{
    private const int OWronly = 0x1, ONonblock = 0x800, OCreat = 0x40;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mkfifo(byte[] path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mkdir(byte[] path, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int open(byte[] path, int flags, uint mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int write(int fd, byte[] buffer, nint count);

    [LibraryImport("libc")]
    private static partial uint geteuid();

    private static byte[] Z(byte[] path) => [.. path, 0];

    private static byte[] Z(string path) => Z(System.Text.Encoding.UTF8.GetBytes(path));

    /// <summary>Whether this process runs as root, which ignores the permission bits of folders.</summary>
    public static bool IsRoot => geteuid() == 0;

    /// <summary>Makes a FIFO (mkfifo needs no privilege).</summary>
    public static void MakeFifo(string path)
    {
        if (mkfifo(Z(path), Convert.ToUInt32("644", 8)) != 0) throw new IOException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Makes a folder whose name is raw bytes (not necessarily UTF-8).</summary>
    public static void MakeFolder(byte[] path)
    {
        if (mkdir(Z(path), Convert.ToUInt32("755", 8)) != 0) throw new IOException($"mkdir: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Writes a file whose name is raw bytes (not necessarily UTF-8).</summary>
    public static void WriteFile(byte[] path, byte[] content)
    {
        int fd = open(Z(path), OWronly | OCreat, Convert.ToUInt32("644", 8));
        if (fd < 0) throw new IOException($"open: errno {Marshal.GetLastPInvokeError()}");
        try { if (write(fd, content, content.Length) != content.Length) throw new IOException("short write"); }
        finally { close(fd); }
    }

    /// <summary>
    /// Opens the FIFO for writing without blocking and closes it at once: a reader blocked in open(2) on it wakes and
    /// reads end-of-file. False when no reader was waiting (open fails with ENXIO).
    /// </summary>
    public static bool ReleaseFifoReader(string path)
    {
        int fd = open(Z(path), OWronly | ONonblock, 0);
        if (fd < 0) return false;
        close(fd);
        return true;
    }

    /// <summary>Opens the FIFO for reading without blocking and closes it: a writer blocked in open(2) on it wakes (and then fails to write).</summary>
    public static void ReleaseFifoWriter(string path)
    {
        int fd = open(Z(path), ONonblock, 0);
        if (fd >= 0) close(fd);
    }
}
