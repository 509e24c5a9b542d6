namespace Cnn.Core.Kernels;

/// <summary>A compile-time integer: a struct type argument the JIT specialises on and folds to a constant.</summary>
internal interface IConstant
{
    static abstract int Value { get; }
}

internal readonly struct Rows1 : IConstant { public static int Value => 1; }

internal readonly struct Rows2 : IConstant { public static int Value => 2; }

internal readonly struct Rows3 : IConstant { public static int Value => 3; }

internal readonly struct Rows4 : IConstant { public static int Value => 4; }

internal readonly struct Rows8 : IConstant { public static int Value => 8; }

internal readonly struct Rows12 : IConstant { public static int Value => 12; }

internal readonly struct Cols16 : IConstant { public static int Value => 16; }

internal readonly struct Cols32 : IConstant { public static int Value => 32; }

/// <summary>Every lane of every vector is inside the operand.</summary>
internal readonly struct Full : IConstant { public static int Value => 0; }

/// <summary>Loads and stores go through lane masks: a ragged edge.</summary>
internal readonly struct Masked : IConstant { public static int Value => 1; }

internal readonly struct Vectors1 : IConstant { public static int Value => 1; }

internal readonly struct Vectors2 : IConstant { public static int Value => 2; }

internal readonly struct Vectors4 : IConstant { public static int Value => 4; }

internal readonly struct Vectors8 : IConstant { public static int Value => 8; }

/// <summary>The micro-kernel reads its own B panel only.</summary>
internal readonly struct ThisPanel : IConstant { public static int Value => 0; }

/// <summary>The micro-kernel also prefetches the packed B panel after its own into L1.</summary>
internal readonly struct NextPanel : IConstant { public static int Value => 1; }
