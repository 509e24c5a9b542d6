// MSBuild task (compiled by RoslynCodeTaskFactory from Directory.Build.targets).
//
// TorchSharp's native shim libLibTorchSharp.so is built with GCC 13+, so its
// .gnu.version_r section requires libstdc++.so.6 version GLIBCXX_3.4.32, which
// older systems (e.g. Debian 12, GCC 12) do not define; ld.so then refuses to
// load it. The only symbol of that version (_ZSt21ios_base_library_initv) is
// referenced by no relocation, so ld.so never looks it up. This task marks each
// such missing, relocation-free version requirement VER_FLG_WEAK in the copy of
// the library in the build output; ld.so then tolerates its absence. If a
// relocation does need a missing version, the build fails naming the cause.
//
// ELF64 little-endian only (x86-64, AArch64). All reads are bounds-checked.
//
// RoslynCodeTaskFactory compiles this against netstandard2.0 reference assemblies,
// so the .NET 7+ file APIs used below (File.GetUnixFileMode/SetUnixFileMode,
// File.Move with overwrite) are bound by reflection; MSBuild itself runs on .NET 10.
#nullable enable

using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class ElfVersionFix : Task
{
    const string LibStdCxx = "libstdc++.so.6";

    /// <summary>The copy of libLibTorchSharp.so in the output folder; patched in place (atomically).</summary>
    [Required]
    public string TargetFile { get; set; } = "";

    /// <summary>Test only: semicolon-separated version names to treat as not defined by the system libstdc++.</summary>
    public string AssumeMissingVersions { get; set; } = "";

    /// <summary>True if the file was rewritten.</summary>
    [Output]
    public bool Patched { get; set; }

    public override bool Execute()
    {
        try
        {
            return Run();
        }
        catch (ElfFormatException e)
        {
            Log.LogError("ElfVersionFix: {0}", e.Message);
            return false;
        }
        catch (IOException e)
        {
            Log.LogError("ElfVersionFix: I/O error on '{0}': {1}", TargetFile, e.Message);
            return false;
        }
        catch (UnauthorizedAccessException e)
        {
            Log.LogError("ElfVersionFix: access denied on '{0}': {1}", TargetFile, e.Message);
            return false;
        }
        catch (PlatformNotSupportedException e)
        {
            Log.LogError("ElfVersionFix: {0}", e.Message);
            return false;
        }
        catch (OverflowException)
        {
            Log.LogError("ElfVersionFix: '{0}': an ELF offset or size is out of range (malformed file).", TargetFile);
            return false;
        }
    }

    bool Run()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Log.LogMessage(MessageImportance.Low, "ElfVersionFix: not on Linux; nothing to do.");
            return true;
        }
        string target = Path.GetFullPath(TargetFile);
        byte[] data = File.ReadAllBytes(target);
        var elf = Elf.Parse(data, target);

        string? stdPath = FindSystemLibStdCxx(elf.Machine);
        if (stdPath == null)
        {
            Log.LogError(
                "ElfVersionFix: no {0} for {1} found in {2}. '{3}' (TorchSharp's native shim) needs the GNU C++ runtime: install libstdc++ (GCC 13 or newer).",
                LibStdCxx, Elf.MachineName(elf.Machine), string.Join(", ", CandidateDirs(elf.Machine)), target);
            return false;
        }

        var stdElf = Elf.Parse(File.ReadAllBytes(stdPath), stdPath);
        var defined = new HashSet<string>(stdElf.ReadVersionDefinitions(), StringComparer.Ordinal);
        foreach (var v in AssumeMissingVersions.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries))
            defined.Remove(v.Trim());

        var missing = elf.ReadVersionNeeds()
            .Where(n => n.File == LibStdCxx && !defined.Contains(n.Name))
            .ToList();
        if (missing.Count == 0)
        {
            Log.LogMessage(MessageImportance.Low,
                "ElfVersionFix: '{0}': system {1} ({2}) defines every version it needs; nothing to do.", target, LibStdCxx, stdPath);
            return true;
        }

        // Versym indices (vna_other) that some relocation actually binds to.
        var relocated = elf.SymbolsReferencedByRelocations();
        bool failed = false;
        foreach (var need in missing)
        {
            var syms = relocated.Where(s => s.VersionIndex == need.Other).Select(s => s.Name).Distinct().OrderBy(s => s, StringComparer.Ordinal).ToList();
            if (syms.Count > 0)
            {
                Log.LogError(
                    "ElfVersionFix: '{0}' requires {1} version {2}, which the system {1} ({3}) does not define, and relocations bind to symbol(s) of that version: {4}. " +
                    "The system libstdc++ is older than the GCC that built TorchSharp's native shim; install a newer libstdc++ (GCC 13 or newer).",
                    target, LibStdCxx, need.Name, stdPath, string.Join(", ", syms));
                failed = true;
            }
        }
        if (failed)
            return false;

        var toPatch = missing.Where(n => (n.Flags & Elf.VER_FLG_WEAK) == 0).ToList();
        if (toPatch.Count == 0)
        {
            Log.LogMessage(MessageImportance.Low,
                "ElfVersionFix: '{0}': missing {1} version(s) {2} already weak; nothing to do.",
                target, LibStdCxx, string.Join(", ", missing.Select(n => n.Name)));
            return true;
        }

        byte[] patched = (byte[])data.Clone();
        foreach (var need in toPatch)
            Elf.WriteU16(patched, need.FlagsOffset, (ushort)(need.Flags | Elf.VER_FLG_WEAK));

        WriteAtomically(target, patched);
        Patched = true;
        Log.LogMessage(MessageImportance.Normal,
            "ElfVersionFix: marked {0} version need(s) {1} weak in '{2}' (system {0} {3} lacks them; no relocation uses them).",
            LibStdCxx, string.Join(", ", toPatch.Select(n => n.Name)), target, stdPath);
        return true;
    }

    static void WriteAtomically(string target, byte[] bytes)
    {
        // Replace by rename: never writes through the old inode, so a hard link
        // or symlink into the NuGet cache would be left untouched.
        string dir = Path.GetDirectoryName(target) ?? ".";
        string tmp = Path.Combine(dir, "." + Path.GetFileName(target) + "." + Guid.NewGuid().ToString("N") + ".tmp");
        object mode = Call(FileApi("GetUnixFileMode", typeof(string)), target);
        // Keep the original timestamp so the SDK's incremental copy (same size and
        // time = unchanged) does not re-copy the pristine file on every build.
        DateTime mtime = File.GetLastWriteTimeUtc(target);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes, 0, bytes.Length);
                fs.Flush(true);
            }
            Call(FileApi("SetUnixFileMode", typeof(string), mode.GetType()), tmp, mode);
            File.SetLastWriteTimeUtc(tmp, mtime);
            Call(FileApi("Move", typeof(string), typeof(string), typeof(bool)), tmp, target, true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    static MethodInfo FileApi(string name, params Type[] parameters) =>
        typeof(File).GetMethod(name, BindingFlags.Public | BindingFlags.Static, null, parameters, null)
        ?? throw new PlatformNotSupportedException($"System.IO.File.{name} not found; ElfVersionFix needs MSBuild running on .NET 7 or newer (use the .NET SDK's 'dotnet build').");

    static object Call(MethodInfo m, params object[] args)
    {
        try
        {
            return m.Invoke(null, args) ?? new object();
        }
        catch (TargetInvocationException e) when (e.InnerException != null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw; // unreachable
        }
    }

    static IEnumerable<string> CandidateDirs(ushort machine)
    {
        string triplet = machine == Elf.EM_AARCH64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
        return new[] { "/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/usr/lib" };
    }

    static string? FindSystemLibStdCxx(ushort machine)
    {
        foreach (var dir in CandidateDirs(machine))
        {
            string p = Path.Combine(dir, LibStdCxx);
            if (!File.Exists(p))
                continue;
            try
            {
                if (Elf.Parse(File.ReadAllBytes(p), p).Machine == machine)
                    return p;
            }
            catch (ElfFormatException)
            {
                // Not a usable ELF64 LE library of this machine (e.g. 32-bit); keep looking.
            }
        }
        return null;
    }
}

sealed class ElfFormatException : Exception
{
    public ElfFormatException(string message) : base(message) { }
}

sealed class ElfSection
{
    public int Index;
    public uint Type;
    public uint Link;
    public uint Info;
    public ulong Offset;
    public ulong Size;
    public ulong EntSize;
}

sealed class VersionNeed
{
    public string File = "";
    public string Name = "";
    public ushort Flags;
    public ushort Other;
    public int FlagsOffset;
}

sealed class RelocatedSymbol
{
    public string Name = "";
    public int VersionIndex;
}

sealed class Elf
{
    public const ushort EM_X86_64 = 62;
    public const ushort EM_AARCH64 = 183;
    public const uint SHT_RELA = 4;
    public const uint SHT_NOBITS = 8;
    public const uint SHT_REL = 9;
    public const uint SHT_DYNSYM = 11;
    public const uint SHT_GNU_verdef = 0x6ffffffd;
    public const uint SHT_GNU_verneed = 0x6ffffffe;
    public const uint SHT_GNU_versym = 0x6fffffff;
    public const ushort VER_FLG_BASE = 1;
    public const ushort VER_FLG_WEAK = 2;

    readonly byte[] d;
    readonly string path;
    public ushort Machine { get; }
    public IReadOnlyList<ElfSection> Sections { get; }

    Elf(byte[] data, string path, ushort machine, List<ElfSection> sections)
    {
        d = data;
        this.path = path;
        Machine = machine;
        Sections = sections;
    }

    public static string MachineName(ushort m) => m == EM_X86_64 ? "x86-64" : m == EM_AARCH64 ? "AArch64" : "machine " + m;

    public static Elf Parse(byte[] d, string path)
    {
        ElfFormatException Bad(string why) => new ElfFormatException($"'{path}': {why}");
        if (d.Length < 64 || d[0] != 0x7f || d[1] != (byte)'E' || d[2] != (byte)'L' || d[3] != (byte)'F')
            throw Bad("not an ELF file");
        if (d[4] != 2)
            throw Bad("not ELF64 (EI_CLASS " + d[4] + "); only 64-bit little-endian x86-64/AArch64 is supported");
        if (d[5] != 1)
            throw Bad("not little-endian (EI_DATA " + d[5] + "); only 64-bit little-endian x86-64/AArch64 is supported");
        if (d[6] != 1)
            throw Bad("unknown EI_VERSION " + d[6]);
        ushort machine = ReadU16(d, 18);
        if (machine != EM_X86_64 && machine != EM_AARCH64)
            throw Bad("unsupported e_machine " + machine + "; only x86-64 and AArch64 are supported");

        ulong shoff = ReadU64(d, 0x28);
        ushort shentsize = ReadU16(d, 0x3a);
        ulong shnum = ReadU16(d, 0x3c);
        if (shoff == 0)
            throw Bad("no section header table");
        if (shentsize != 64)
            throw Bad("unexpected e_shentsize " + shentsize);
        CheckRange(d, shoff, 64, path, "section header 0");
        if (shnum == 0) // extended numbering: real count in section 0's sh_size
            shnum = ReadU64(d, checked((int)shoff) + 0x20);
        if (shnum > (ulong)d.Length / 64)
            throw Bad("section count " + shnum + " exceeds file size");
        CheckRange(d, shoff, shnum * 64, path, "section header table");

        var sections = new List<ElfSection>((int)shnum);
        for (int i = 0; i < (int)shnum; i++)
        {
            int h = checked((int)shoff + i * 64);
            var s = new ElfSection
            {
                Index = i,
                Type = ReadU32(d, h + 4),
                Offset = ReadU64(d, h + 0x18),
                Size = ReadU64(d, h + 0x20),
                Link = ReadU32(d, h + 0x28),
                Info = ReadU32(d, h + 0x2c),
                EntSize = ReadU64(d, h + 0x38),
            };
            if (s.Type != SHT_NOBITS && s.Type != 0)
                CheckRange(d, s.Offset, s.Size, path, "section " + i);
            sections.Add(s);
        }
        return new Elf(d, path, machine, sections);
    }

    static void CheckRange(byte[] d, ulong offset, ulong size, string path, string what)
    {
        if (offset > (ulong)d.Length || size > (ulong)d.Length - offset)
            throw new ElfFormatException($"'{path}': {what} (offset {offset}, size {size}) lies outside the file ({d.Length} bytes)");
    }

    ElfFormatException Bad(string why) => new ElfFormatException($"'{path}': {why}");

    ElfSection? Single(uint type)
    {
        var all = Sections.Where(s => s.Type == type).ToList();
        if (all.Count > 1)
            throw Bad($"more than one section of type 0x{type:x}");
        return all.Count == 1 ? all[0] : null;
    }

    ElfSection Linked(ElfSection s)
    {
        if (s.Link == 0 || s.Link >= Sections.Count)
            throw Bad($"section {s.Index} has invalid sh_link {s.Link}");
        return Sections[(int)s.Link];
    }

    string ReadString(ElfSection strtab, ulong offset)
    {
        if (offset >= strtab.Size)
            throw Bad($"string offset {offset} outside string table (section {strtab.Index}, {strtab.Size} bytes)");
        int start = checked((int)(strtab.Offset + offset));
        int end = checked((int)(strtab.Offset + strtab.Size));
        int z = Array.IndexOf(d, (byte)0, start, end - start);
        if (z < 0)
            throw Bad($"unterminated string at offset {offset} in section {strtab.Index}");
        return Encoding.UTF8.GetString(d, start, z - start);
    }

    /// <summary>Absolute offset of a record of the given size at rel within section s, bounds-checked.</summary>
    int Record(ElfSection s, ulong rel, int size, string what)
    {
        if (rel > s.Size || (ulong)size > s.Size - rel)
            throw Bad($"{what} at offset {rel} overruns section {s.Index} ({s.Size} bytes)");
        return checked((int)(s.Offset + rel));
    }

    /// <summary>Entries of .gnu.version_r (Elf64_Verneed / Elf64_Vernaux).</summary>
    public List<VersionNeed> ReadVersionNeeds()
    {
        var result = new List<VersionNeed>();
        var sec = Single(SHT_GNU_verneed);
        if (sec == null)
            return result;
        var strtab = Linked(sec);
        ulong count = sec.Info != 0 ? sec.Info : sec.Size / 16;
        ulong pos = 0;
        for (ulong i = 0; i < count; i++)
        {
            int vn = Record(sec, pos, 16, "Elf64_Verneed");
            ushort version = ReadU16(d, vn);
            if (version != 1)
                throw Bad($"Elf64_Verneed at {pos} has vn_version {version}");
            ushort cnt = ReadU16(d, vn + 2);
            string file = ReadString(strtab, ReadU32(d, vn + 4));
            uint auxOff = ReadU32(d, vn + 8);
            uint next = ReadU32(d, vn + 12);
            ulong apos = pos + auxOff;
            for (int j = 0; j < cnt; j++)
            {
                int va = Record(sec, apos, 16, "Elf64_Vernaux");
                result.Add(new VersionNeed
                {
                    File = file,
                    Flags = ReadU16(d, va + 4),
                    Other = ReadU16(d, va + 6),
                    Name = ReadString(strtab, ReadU32(d, va + 8)),
                    FlagsOffset = va + 4,
                });
                uint anext = ReadU32(d, va + 12);
                if (anext == 0)
                {
                    if (j != cnt - 1)
                        throw Bad($"Elf64_Verneed for {file} claims {cnt} entries but its chain ends after {j + 1}");
                    break;
                }
                apos += anext;
            }
            if (next == 0)
                break;
            pos += next;
        }
        return result;
    }

    /// <summary>Version names defined in .gnu.version_d (Elf64_Verdef / Elf64_Verdaux), excluding the file's base entry.</summary>
    public List<string> ReadVersionDefinitions()
    {
        var result = new List<string>();
        var sec = Single(SHT_GNU_verdef) ?? throw Bad("has no version definition section (SHT_GNU_verdef)");
        var strtab = Linked(sec);
        ulong count = sec.Info != 0 ? sec.Info : sec.Size / 20;
        ulong pos = 0;
        for (ulong i = 0; i < count; i++)
        {
            int vd = Record(sec, pos, 20, "Elf64_Verdef");
            ushort version = ReadU16(d, vd);
            if (version != 1)
                throw Bad($"Elf64_Verdef at {pos} has vd_version {version}");
            ushort flags = ReadU16(d, vd + 2);
            ushort cnt = ReadU16(d, vd + 6);
            uint auxOff = ReadU32(d, vd + 12);
            uint next = ReadU32(d, vd + 16);
            if (cnt > 0 && (flags & VER_FLG_BASE) == 0)
            {
                int va = Record(sec, pos + auxOff, 8, "Elf64_Verdaux");
                result.Add(ReadString(strtab, ReadU32(d, va))); // first Verdaux names the version itself
            }
            if (next == 0)
                break;
            pos += next;
        }
        return result;
    }

    /// <summary>Dynamic symbols referenced by any REL/RELA relocation against .dynsym, with their versym index (hidden bit masked).</summary>
    public List<RelocatedSymbol> SymbolsReferencedByRelocations()
    {
        var result = new List<RelocatedSymbol>();
        var dynsym = Single(SHT_DYNSYM);
        if (dynsym == null)
            return result;
        if (dynsym.EntSize != 24)
            throw Bad($".dynsym has sh_entsize {dynsym.EntSize}, expected 24");
        ulong nsyms = dynsym.Size / 24;
        var dynstr = Linked(dynsym);
        var versym = Single(SHT_GNU_versym) ?? throw Bad("has .gnu.version_r but no .gnu.version (SHT_GNU_versym)");
        if (versym.Size / 2 != nsyms)
            throw Bad($".gnu.version has {versym.Size / 2} entries but .dynsym has {nsyms}");

        var seen = new HashSet<uint>();
        foreach (var rs in Sections.Where(s => s.Type == SHT_RELA || s.Type == SHT_REL))
        {
            // Only relocations against the dynamic symbol table are processed by ld.so.
            if (rs.Link != 0 && rs.Link != dynsym.Index)
                continue;
            int entSize = rs.Type == SHT_RELA ? 24 : 16;
            if (rs.EntSize != (ulong)entSize)
                throw Bad($"relocation section {rs.Index} has sh_entsize {rs.EntSize}, expected {entSize}");
            if (rs.Size % (ulong)entSize != 0)
                throw Bad($"relocation section {rs.Index} size {rs.Size} is not a multiple of {entSize}");
            for (ulong r = 0; r < rs.Size / (ulong)entSize; r++)
            {
                int e = Record(rs, r * (ulong)entSize, entSize, "relocation");
                ulong info = ReadU64(d, e + 8);
                uint sym = (uint)(info >> 32); // ELF64_R_SYM
                if (sym == 0 || !seen.Add(sym))
                    continue;
                if (sym >= nsyms)
                    throw Bad($"relocation in section {rs.Index} references symbol {sym}, beyond .dynsym ({nsyms} symbols)");
                int se = Record(dynsym, sym * 24UL, 24, "Elf64_Sym");
                int ve = Record(versym, sym * 2UL, 2, "Elf64_Versym");
                result.Add(new RelocatedSymbol
                {
                    Name = ReadString(dynstr, ReadU32(d, se)),
                    VersionIndex = ReadU16(d, ve) & 0x7fff,
                });
            }
        }
        return result;
    }

    public static ushort ReadU16(byte[] b, int o)
    {
        if (o < 0 || o > b.Length - 2) throw new ElfFormatException($"read of 2 bytes at {o} outside buffer");
        return (ushort)(b[o] | b[o + 1] << 8);
    }

    public static uint ReadU32(byte[] b, int o)
    {
        if (o < 0 || o > b.Length - 4) throw new ElfFormatException($"read of 4 bytes at {o} outside buffer");
        return (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
    }

    public static ulong ReadU64(byte[] b, int o) => ReadU32(b, o) | (ulong)ReadU32(b, o + 4) << 32;

    public static void WriteU16(byte[] b, int o, ushort v)
    {
        if (o < 0 || o > b.Length - 2) throw new ElfFormatException($"write of 2 bytes at {o} outside buffer");
        b[o] = (byte)v;
        b[o + 1] = (byte)(v >> 8);
    }
}
