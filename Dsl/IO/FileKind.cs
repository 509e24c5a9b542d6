using System.Runtime.InteropServices;

namespace Cnn.Dsl.IO;

/// <summary>What a path names, as <c>stat(2)</c> or <c>lstat(2)</c> reports it.</summary>
public enum FileKind
{
    /// <summary>Nothing exists at the path.</summary>
    Missing,
    /// <summary>A regular file.</summary>
    Regular,
    /// <summary>A folder.</summary>
    Directory,
    /// <summary>A symbolic link (only from <see cref="FileKinds.OfLink"/>).</summary>
    SymbolicLink,
    /// <summary>A character device (<c>/dev/zero</c>, a terminal).</summary>
    CharacterDevice,
    /// <summary>A block device.</summary>
    BlockDevice,
    /// <summary>A named pipe: opening it for reading waits for a writer, and it may never end.</summary>
    Fifo,
    /// <summary>A Unix socket.</summary>
    Socket,
}

/// <summary>
/// The kind of a path. .NET's <see cref="FileSystemInfo"/> does not tell a device or a FIFO from a regular file, so
/// on Unix this asks the runtime's own native shim (<c>SystemNative_Stat</c>, whose <c>FileStatus</c> begins with
/// the flags and the raw <c>st_mode</c> on every Unix the runtime supports); elsewhere a path is a folder, a file or
/// nothing.
/// </summary>
public static partial class FileKinds
{
    private const int TypeMask = 0xF000;

    /// <summary>The kind of what <paramref name="path"/> names, following symbolic links.</summary>
    public static FileKind Of(string path) => Query(path, follow: true);

    /// <summary>The kind of <paramref name="path"/> itself: a symbolic link is <see cref="FileKind.SymbolicLink"/>.</summary>
    public static FileKind OfLink(string path) => Query(path, follow: false);

    /// <summary>A few words for a kind, for error messages ("a character device").</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a folder",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Fifo => "a named pipe (FIFO)",
        _ => "a socket",
    };

    private static FileKind Query(string path, bool follow)
    {
        if (OperatingSystem.IsWindows())
        {
            if (Directory.Exists(path)) return FileKind.Directory;
            return File.Exists(path) ? FileKind.Regular : FileKind.Missing;
        }
        // FileStatus is about 150 bytes; the buffer leaves room for fields a later runtime may add at its end.
        var status = new byte[512];
        int rc = follow ? Stat(path, status) : LStat(path, status);
        if (rc != 0) return FileKind.Missing;
        int mode = BitConverter.ToInt32(status, 4);
        return (mode & TypeMask) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0x1000 => FileKind.Fifo,
            _ => FileKind.Socket,
        };
    }

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Stat(string path, [Out] byte[] status);

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_LStat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LStat(string path, [Out] byte[] status);
}
