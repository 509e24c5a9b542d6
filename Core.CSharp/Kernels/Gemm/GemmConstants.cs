namespace Cnn.Core.Kernels;

/// <summary>A compile-time integer: a struct type argument the JIT specialises on and folds to a constant.</summary>
internal interface IConstant
{
    static abstract int Value { get; }
}

internal readonly struct Rows4 : IConstant { public static int Value => 4; }

internal readonly struct Rows8 : IConstant { public static int Value => 8; }

internal readonly struct Rows12 : IConstant { public static int Value => 12; }

internal readonly struct Cols16 : IConstant { public static int Value => 16; }

internal readonly struct Cols32 : IConstant { public static int Value => 32; }
