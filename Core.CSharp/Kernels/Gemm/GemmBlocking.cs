namespace Cnn.Core.Kernels;

/// <summary>
/// The blocking <see cref="Gemm"/> uses on this machine: the micro-kernel's instruction set and register tile (MR rows x NR
/// columns of C), and the cache blocks of the Goto/BLIS loop nest (MC rows of packed A, at most KC steps of depth per block,
/// NC columns of packed B).
/// </summary>
/// <param name="InstructionSet">The micro-kernel's instruction set.</param>
/// <param name="MR">Rows of the register tile.</param>
/// <param name="NR">Columns of the register tile.</param>
/// <param name="MC">Rows of A packed at once.</param>
/// <param name="KC">The most depth steps in one block (equal blocks of at most this many; the blocks fix the order of the sums).</param>
/// <param name="NC">Columns of B packed at once.</param>
/// <param name="APanelResident">Whether the inner loops keep a panel of A in L1 while B's panels stream from L2 (else the reverse).</param>
public sealed record GemmBlocking(GemmInstructionSet InstructionSet, int MR, int NR, int MC, int KC, int NC, bool APanelResident)
{
    /// <summary>The blocking of the micro-kernel <see cref="GemmInstructionSet.Auto"/> chooses here.</summary>
    public static GemmBlocking Current => For(GemmInstructionSet.Auto);

    /// <summary>The blocking of a given micro-kernel (<see cref="GemmInstructionSet.Auto"/>: the one chosen here).</summary>
    public static GemmBlocking For(GemmInstructionSet isa) => Gemm.Resolve(isa) switch
    {
        GemmInstructionSet.Vector512 => Of<GemmKernel512>(GemmInstructionSet.Vector512),
        GemmInstructionSet.Vector256 => Of<GemmKernel256>(GemmInstructionSet.Vector256),
        _ => Of<GemmKernelScalar>(GemmInstructionSet.Scalar),
    };

    private static GemmBlocking Of<TK>(GemmInstructionSet isa) where TK : struct, IGemmKernel => new(isa, TK.MR, TK.NR, TK.MC, GemmDepth.MaxBlock, TK.NC, TK.APanelResident);

    /// <inheritdoc />
    public override string ToString() => $"{InstructionSet} {MR}x{NR} register tile, MC {MC}, KC {KC}, NC {NC}, {(APanelResident ? "A" : "B")} panel in L1";
}
