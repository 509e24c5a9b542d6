namespace Cnn.Core;

/// <summary>
/// Recycles the storage of the tensors a piece of work creates and then drops, such as a training step's activations,
/// masks and gradients, the way PyTorch's caching allocator does. While an arena is active on a thread, the kernels
/// called on that thread take the arrays of their outputs from it; <see cref="Recycle"/> then makes every one of them
/// available to the next piece of work, whose arrays of the same lengths come back without a new allocation.
/// <para>
/// Why: a training step of a small network creates tens of megabytes of tensors. Fresh from the garbage collector they
/// are large-object allocations, each counted towards a full collection (measured: one or two per step) and each
/// touching pages the collector has handed back to the system (measured: about 1,700 page faults per step of
/// <c>simple-convnet</c>, a third of its time in the kernel). Recycled, they cost neither.
/// </para>
/// <para>
/// Contract: a tensor created while the arena was active must not be used after <see cref="Recycle"/> unless it was
/// passed through <see cref="Keep"/> first, which copies it out. The trainer keeps what a step returns (parameters,
/// state, optimizer slots, outputs) and nothing else escapes it. Arrays below <see cref="MinLength"/> elements are not
/// recycled: the collector handles small arrays cheaply, and leaving them alone keeps the arena's bookkeeping small.
/// An arena belongs to one thread at a time; kernels that allocate on other threads get ordinary arrays.
/// </para>
/// </summary>
public sealed class TensorArena
{
    /// <summary>Arrays shorter than this are ordinary arrays even while an arena is active (unless the arena was made with a smaller <see cref="MinimumLength"/>).</summary>
    public const int MinLength = 1024;

    /// <summary>An arena that recycles arrays of <see cref="MinLength"/> elements and more.</summary>
    public TensorArena() : this(MinLength) { }

    /// <summary>
    /// An arena that recycles arrays of <paramref name="minimumLength"/> elements and more: 1 for work whose shapes repeat
    /// exactly from call to call (inference), where small arrays are recycled as cheaply as large ones.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="minimumLength"/> is below 1.</exception>
    public TensorArena(int minimumLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumLength, 1);
        MinimumLength = minimumLength;
    }

    /// <summary>The shortest array this arena recycles; shorter ones are ordinary arrays.</summary>
    public int MinimumLength { get; }

    [ThreadStatic] private static TensorArena? t_current;

    private readonly Dictionary<(Type, int), Stack<Array>> _free = new();
    private readonly HashSet<Array> _rented = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<(Type, int)> _unused = new();
    private bool _active;

    /// <summary>True when some arena is active on the calling thread.</summary>
    public static bool ActiveOnThisThread => t_current is not null;

    /// <summary>True while <see cref="Activate"/>'s scope is open.</summary>
    public bool IsActive => _active;

    /// <summary>Bytes of the arrays this arena holds for reuse (those handed out since the last recycle included).</summary>
    public long RetainedBytes { get; private set; }

    /// <summary>
    /// Makes this arena the one kernels on this thread allocate from until the returned scope is disposed.
    /// </summary>
    /// <exception cref="InvalidOperationException">This arena is already active, or another arena is active on this thread.</exception>
    public Scope Activate()
    {
        if (_active) throw new InvalidOperationException("TensorArena.Activate: this arena is already active; scopes do not nest.");
        if (t_current is not null) throw new InvalidOperationException("TensorArena.Activate: another arena is active on this thread.");
        _active = true;
        t_current = this;
        return new Scope(this);
    }

    /// <summary>
    /// The tensor itself when its storage does not come from this arena; otherwise a copy in an ordinary array, which
    /// outlives <see cref="Recycle"/>.
    /// </summary>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        return _rented.Contains(tensor.Storage) ? Tensor.FromArray(tensor.Storage, tensor.Shape) : tensor;
    }

    /// <summary>
    /// Makes every array handed out since the last call available again, and releases those the last piece of work did
    /// not use, so that the arena holds at most what one piece of work needs. Every tensor made from them is invalid
    /// from here on.
    /// </summary>
    /// <exception cref="InvalidOperationException">The arena is active.</exception>
    public void Recycle()
    {
        if (_active) throw new InvalidOperationException("TensorArena.Recycle: dispose the active scope first.");
        // Lengths the last piece of work did not take at all are dropped: a shape that came once (an epoch's short last
        // batch) does not keep its memory for ever.
        foreach (var key in _unused)
        {
            foreach (var array in _free[key]) RetainedBytes -= Buffer.ByteLength(array);
            _free.Remove(key);
        }
        foreach (var array in _rented)
        {
            var key = (array.GetType(), array.Length);
            if (!_free.TryGetValue(key, out var stack)) _free[key] = stack = new Stack<Array>();
            stack.Push(array);
        }
        _rented.Clear();
        // Refilled rather than rebuilt, so that a recycle allocates nothing once the arena has seen its lengths.
        _unused.Clear();
        foreach (var key in _free.Keys) _unused.Add(key);
    }

    /// <summary>An array of <paramref name="length"/> elements with undefined contents: the active arena's or a new one.</summary>
    internal static T[] Uninitialized<T>(int length) where T : unmanaged
    {
        var arena = t_current;
        return arena is null || length < arena.MinimumLength ? GC.AllocateUninitializedArray<T>(length) : arena.Rent<T>(length);
    }

    /// <summary>An array of <paramref name="length"/> zeros: the active arena's (cleared) or a new one.</summary>
    internal static T[] Zeroed<T>(int length) where T : unmanaged
    {
        var arena = t_current;
        if (arena is null || length < arena.MinimumLength) return new T[length];
        var array = arena.Rent<T>(length);
        Array.Clear(array);
        return array;
    }

    private T[] Rent<T>(int length) where T : unmanaged
    {
        var key = (typeof(T[]), length);
        T[] array;
        if (_free.TryGetValue(key, out var stack) && stack.Count > 0)
        {
            array = (T[])stack.Pop();
            _unused.Remove(key);
        }
        else
        {
            array = GC.AllocateUninitializedArray<T>(length);
            RetainedBytes += Buffer.ByteLength(array);
        }
        _rented.Add(array);
        return array;
    }

    /// <summary>The active period of an arena; disposing it deactivates the arena (it does not recycle).</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly TensorArena? _arena;

        internal Scope(TensorArena arena) => _arena = arena;

        /// <summary>Deactivates the arena.</summary>
        public void Dispose()
        {
            if (_arena is null || !_arena._active) return;
            _arena._active = false;
            if (ReferenceEquals(t_current, _arena)) t_current = null;
        }
    }
}
