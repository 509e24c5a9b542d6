# --- The runtime every generated model.py carries (Dsl/PyTorch/model_runtime.py in the cnn sources). ---
# Plain PyTorch and NumPy: no package beyond python3-torch and python3-numpy.
import json
import math
import os
import struct
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

try:
    import torch.distributed.nn.functional as dist_functional
except ImportError:  # a PyTorch built without distributed support: batch norm then never synchronises
    dist_functional = None


class TrainingContext:
    """What a training step tells the layers that need more than their input: where this process's rows start in the
    global batch (dropout draws its mask over the whole batch) and the process group whose batch-norm statistics
    are shared (None: this process's batch alone)."""

    def __init__(self):
        self.row_offset = 0
        self.sync_group = None


CONTEXT = TrainingContext()


def f32(value):
    """A number rounded to float32, as the C# side holds it (exactly representable in a Python float)."""
    return float(np.float32(value))


def attach(parent, children):
    """Registers children under cnn's layer names. Straight into _modules, as add_module would, but without its refusal
    of names that are also attributes of nn.Module ('train', 'eval', 'forward'): such a child is reached with
    get_submodule(name), and its tensors keep the state_dict keys that equal cnn's paths."""
    for name, child in children:
        if not name or "." in name or name in parent._modules:
            raise ValueError(f"layer name '{name}' is empty, holds '.', or repeats")
        parent._modules[name] = child


class Serial(nn.Sequential):
    """Layers applied one after the other (nn.Sequential with cnn's layer names)."""

    def __init__(self, layers):
        nn.Module.__init__(self)
        attach(self, layers)


class Sum(nn.Module):
    """Branches fed by the same input, their outputs added in order (a fan-out joined by sum; a residual block)."""

    def __init__(self, branches):
        super().__init__()
        attach(self, branches)

    def forward(self, x):
        modules = iter(self._modules.values())
        y = next(modules)(x)
        for module in modules:
            y = y + module(x)
        return y


class Auxiliary(nn.Module):
    """An auxiliary classifier (GoogLeNet's side heads): the identity on the trunk. In training it also runs its head and
    keeps the output in `output`, whose loss the training script adds to the main loss times `weight`."""

    def __init__(self, weight, head):
        super().__init__()
        self.weight, self.output = f32(weight), None
        attach(self, head)

    def forward(self, x):
        self.output = self.head(x) if self.training else None
        return x


class Concat(nn.Module):
    """Branches fed by the same input, their outputs concatenated along channels (an inception module)."""

    def __init__(self, branches):
        super().__init__()
        attach(self, branches)

    def forward(self, x):
        return torch.cat([module(x) for module in self._modules.values()], 1)


class GlobalAvgPool(nn.Module):
    """The mean of each channel over every spatial axis, the axes kept as ones."""

    def forward(self, x):
        return x.flatten(2).mean(2).reshape(x.shape[:2] + (1,) * (x.dim() - 2))


class GlobalMaxPool(nn.Module):
    """The maximum of each channel over every spatial axis, the axes kept as ones."""

    def forward(self, x):
        return x.flatten(2).max(2).values.reshape(x.shape[:2] + (1,) * (x.dim() - 2))


class ChannelMaxPool(nn.Module):
    """The maximum over windows of consecutive channels at each position (maxout when kernel equals stride)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        return x.unfold(1, self.kernel, self.stride).max(-1).values


class ChannelAvgPool(nn.Module):
    """The mean over windows of consecutive channels at each position."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        return x.unfold(1, self.kernel, self.stride).mean(-1)


class Product(nn.Module):
    """Two branches fed by the same input, their outputs multiplied element-wise with broadcasting (squeeze-and-excitation)."""

    def __init__(self, branches):
        super().__init__()
        attach(self, branches)

    def forward(self, x):
        first, second = self._modules.values()
        return first(x) * second(x)


class Pad2d(nn.Module):
    """Explicit padding of the last two axes: (left, right, top, bottom), constant, reflect or replicate."""

    def __init__(self, pads, mode, value):
        super().__init__()
        self.pads, self.mode, self.value = tuple(pads), mode, value

    def forward(self, x):
        if self.mode == "constant":
            return nn.functional.pad(x, self.pads, mode="constant", value=self.value)
        return nn.functional.pad(x, self.pads, mode=self.mode)


class HardSigmoid(nn.Module):
    """ONNX's hard sigmoid clamp(alpha * x + beta, 0, 1) with a slope and offset other than PyTorch's (1/6, 1/2)."""

    def __init__(self, alpha, beta):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, x):
        return nn.functional.hardtanh(x * self.alpha + self.beta, 0.0, 1.0)


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: channels viewed as [groups, C / groups], transposed, flattened back."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c = x.shape[:2]
        return x.reshape((n, self.groups, c // self.groups) + tuple(x.shape[2:])).transpose(1, 2).reshape(x.shape)


class ChannelSlice(nn.Module):
    """Channels start to start + count of each sample (ShuffleNet v2's channel split)."""

    def __init__(self, start, count):
        super().__init__()
        self.start, self.count = start, count

    def forward(self, x):
        return x[:, self.start:self.start + self.count]


class ConstantOperand(nn.Module):
    """x op value, with value a parameter broadcast over each sample: "add", "subtract", "multiply" or "divide"."""

    def __init__(self, op, shape):
        super().__init__()
        self.op = op
        start = torch.ones(shape) if op in ("multiply", "divide") else torch.zeros(shape)
        self.value = nn.Parameter(start)

    def forward(self, x):
        if self.op == "add":
            return x + self.value
        if self.op == "subtract":
            return x - self.value
        if self.op == "multiply":
            return x * self.value
        return x / self.value


class Reshape(nn.Module):

    """Each sample reshaped to a fixed shape (row-major)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape((x.shape[0],) + self.shape)


def _cropped(base):
    """base (nn.ConvTransposeNd) with its output cropped by (begin, end) along each spatial axis: a transposed convolution
    whose padding differs between the ends of an axis (ONNX's SAME_UPPER), which PyTorch's padding argument cannot
    express. The module runs unpadded; its parameters keep their names."""

    class Cropped(base):
        def __init__(self, *args, crop=(), **kwargs):
            super().__init__(*args, **kwargs)
            self.crop = tuple(crop)

        def forward(self, x):
            y = super().forward(x)
            for axis, (begin, end) in enumerate(self.crop):
                y = y.narrow(2 + axis, begin, y.shape[2 + axis] - begin - end)
            return y

    Cropped.__name__ = Cropped.__qualname__ = base.__name__ + "Cropped"
    return Cropped


ConvTranspose1dCropped, ConvTranspose2dCropped, ConvTranspose3dCropped = (
    _cropped(b) for b in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))


class MatMul(nn.Module):
    """Each of a sample's matrices times a matrix of its own: torch.matmul(x, weight), weight [G..., K, M] a parameter."""

    def __init__(self, shape):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return torch.matmul(x, self.weight)


class Permute(nn.Module):
    """The axes of each sample reordered, the batch axis first: x.permute(0, 1 + axes[0], ...)."""

    def __init__(self, axes):
        super().__init__()
        self.dims = (0,) + tuple(1 + a for a in axes)

    def forward(self, x):
        return x.permute(self.dims)


class AvgPoolPadded(nn.Module):
    """Average pooling in floor mode over an input padded first with zeros by pads (F.pad's order, the last axis first),
    where the pooling module refuses the padding: 3-d on an input smaller than the window before padding (avg_pool3d
    refuses it), 2-d with padding that differs between the ends of an axis or exceeds half the window (ONNX's SAME
    and explicit pads). Without count_include_pad each window's mean is divided by its share of real elements."""

    def __init__(self, kernel, stride, pads, count_include_pad):
        super().__init__()
        self.kernel, self.stride, self.pads, self.count_include_pad = tuple(kernel), tuple(stride), tuple(pads), count_include_pad
        self.pool = F.avg_pool2d if len(self.kernel) == 2 else F.avg_pool3d

    def forward(self, x):
        y = self.pool(F.pad(x, self.pads), self.kernel, self.stride)
        if self.count_include_pad:
            return y
        with torch.no_grad():
            share = self.pool(F.pad(torch.ones_like(x[:1, :1]), self.pads), self.kernel, self.stride)
        return y / share


class BatchNorm(nn.Module):
    """Batch normalisation over axis 1 with cnn's arithmetic: statistics summed in float64, the running variance
    updated with the unbiased batch variance, (1 - momentum) * running + momentum * batch computed in float64. In
    training under torch.distributed (CONTEXT.sync_group set), the statistics are those of the global batch.
    Frozen: always the running statistics."""

    def __init__(self, channels, momentum, eps, frozen=False):
        super().__init__()
        self.momentum, self.eps, self.frozen = f32(momentum), f32(eps), frozen
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        if not self.training or self.frozen:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        dims = [0] + list(range(2, x.dim()))
        view = (1, x.shape[1]) + (1,) * (x.dim() - 2)
        xd = x.double()
        total = torch.cat([xd.sum(dims), xd.new_full((1,), float(x.numel() // x.shape[1]))])
        if CONTEXT.sync_group is not None:
            total = dist_functional.all_reduce(total, group=CONTEXT.sync_group)
        count = total[-1]
        mean = total[:-1] / count
        deviation = xd - mean.reshape(view)
        squares = (deviation * deviation).sum(dims)
        if CONTEXT.sync_group is not None:
            squares = dist_functional.all_reduce(squares, group=CONTEXT.sync_group)
        variance = squares / count
        scale = torch.rsqrt(variance + self.eps) * self.weight.double()
        y = (deviation * scale.reshape(view) + self.bias.double().reshape(view)).float()
        with torch.no_grad():
            m = count.item()
            if m < 2:
                raise ValueError(f"batch norm needs more than one value per channel in training; found {int(m)}")
            unbiased = (variance.float().double() * (m / (m - 1.0))).float()
            keep = 1.0 - self.momentum
            self.running_mean.copy_((keep * self.running_mean.double() + self.momentum * mean.float().double()).float())
            self.running_var.copy_((keep * self.running_var.double() + self.momentum * unbiased.double()).float())
        return y


SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)
SPLITMIX_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
SPLITMIX_MIX2 = np.uint64(0x94D049BB133111EB)


def dropout_mask(key, p, offset, count):
    """cnn's dropout mask (Core.CSharp/Kernels/DropoutKernel.cs): element i of the global batch (row-major) is dropped
    when the top 31 bits of SplitMix64 output i + 1 from the key are below ceil(p * 2^31); kept ones are 1 / (1 - p)."""
    index = np.arange(offset + 1, offset + count + 1, dtype=np.uint64)
    z = np.uint64(key) + index * SPLITMIX_GAMMA
    z = (z ^ (z >> np.uint64(30))) * SPLITMIX_MIX1
    z = (z ^ (z >> np.uint64(27))) * SPLITMIX_MIX2
    z = z ^ (z >> np.uint64(31))
    draw = (z >> np.uint64(33)).astype(np.int64)
    p32 = np.float32(p)
    keep = np.float32(1) / (np.float32(1) - p32)
    return np.where(draw < math.ceil(float(p32) * 2147483648.0), np.float32(0), keep).astype(np.float32)


class Dropout(nn.Module):
    """Inverted dropout. In training with a key (set by the training script for every step) the mask is cnn's, so a
    run here drops what a run of cnn drops; without a key, PyTorch's own generator draws it. Frozen: the identity."""

    def __init__(self, p, frozen=False):
        super().__init__()
        self.p, self.frozen, self.key = f32(p), frozen, None

    def forward(self, x):
        if not self.training or self.frozen or self.p == 0.0:
            return x
        if self.key is None:
            return F.dropout(x, self.p, True)
        per_sample = x[0].numel() if x.shape[0] > 0 else 0
        mask = dropout_mask(self.key, self.p, CONTEXT.row_offset * per_sample, x.numel())
        return x * torch.from_numpy(mask).reshape(x.shape).to(x.device)


def freeze(module, names):
    """Marks parameters as frozen: they get no gradient, and the training script does not update them."""
    parameters = dict(module.named_parameters())
    for name in names:
        parameters[name].requires_grad_(False)


def read_safetensors(path):
    """The tensors (float32, by name) and the metadata of a safetensors file."""
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    if raw.size < 8:
        raise ValueError(f"'{path}' is not a safetensors file: {raw.size} bytes")
    (length,) = struct.unpack("<Q", raw[:8].tobytes())
    if length > raw.size - 8:
        raise ValueError(f"'{path}' is not a safetensors file: its header runs past the end")
    header = json.loads(raw[8:8 + length].tobytes().decode("utf-8"))
    metadata = header.pop("__metadata__", None) or {}
    start = 8 + length
    tensors = {}
    for name, entry in header.items():
        if entry.get("dtype") != "F32":
            raise ValueError(f"'{path}': tensor '{name}' is {entry.get('dtype')}; only F32 is read here")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end - begin != 4 * int(np.prod(shape, dtype=np.int64)) or start + end > raw.size:
            raise ValueError(f"'{path}': tensor '{name}' of shape {list(shape)} has bad offsets [{begin}, {end}]")
        values = np.frombuffer(raw, dtype="<f4", count=(end - begin) // 4, offset=start + begin)
        tensors[name] = torch.from_numpy(values.astype(np.float32).reshape(shape))
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    """Writes float32 tensors (sorted by name) and string metadata as safetensors, atomically (temporary file, fsync, rename)."""
    header, arrays, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().to("cpu", torch.float32).numpy(), dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in arrays:
            f.write(a.tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


CHECKPOINT_FORMAT = "cnn-dsl-checkpoint/1"


def read_checkpoint(path):
    """A cnn checkpoint (param/PATH, state/PATH, opt/SLOT/PATH and the position in the metadata), or a plain file of
    parameters: (parameters, state, slots, metadata), the first two keyed as the module's state_dict."""
    tensors, metadata = read_safetensors(path)
    parameters, state, slots = {}, {}, {}
    if metadata.get("format") != CHECKPOINT_FORMAT:
        if "format" in metadata:
            raise ValueError(f"'{path}': checkpoint format '{metadata['format']}' is not {CHECKPOINT_FORMAT}")
        return {k.replace("/", "."): v for k, v in tensors.items()}, state, slots, metadata
    for name, t in tensors.items():
        kind, _, rest = name.partition("/")
        if kind == "param":
            parameters[rest.replace("/", ".")] = t
        elif kind == "state":
            state[rest.replace("/", ".")] = t
        elif kind == "opt" and "/" in rest:
            slot, _, at = rest.partition("/")
            slots.setdefault(slot, {})[at.replace("/", ".")] = t
        else:
            raise ValueError(f"'{path}': tensor '{name}' is neither param/, state/ nor opt/SLOT/")
    return parameters, state, slots, metadata


def load_weights(module, path):
    """Loads a cnn checkpoint (or a plain parameter file) into the module; returns the file's metadata."""
    parameters, state, _, metadata = read_checkpoint(path)
    expected = set(module.state_dict())
    given = set(parameters) | set(state)
    if given != expected:
        raise ValueError(f"'{path}' does not hold this network's tensors: missing {sorted(expected - given)}, "
                         f"unexpected {sorted(given - expected)}")
    module.load_state_dict({**parameters, **state}, strict=True)
    return metadata


def predict(network_class, weights, x_path, y_path):
    """Writes the eval-mode output of the network for the batch in x_path (.npy, [N, *INPUT_SHAPE]) to y_path (.npy)."""
    net = network_class()
    load_weights(net, weights)
    net.eval()
    x = np.load(x_path, allow_pickle=False)
    if tuple(x.shape[1:]) != INPUT_SHAPE or x.ndim != len(INPUT_SHAPE) + 1:
        raise ValueError(f"'{x_path}' holds a batch of shape {list(x.shape)}; the network takes [N, {', '.join(map(str, INPUT_SHAPE))}]")
    with torch.no_grad():
        y = net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    np.save(y_path, y.numpy())


def main(argv, network_class):
    if len(argv) != 3 or argv[0] in ("-h", "--help"):
        print(f"usage: python3 model.py WEIGHTS.safetensors X.npy Y.npy\n"
              f"writes the eval-mode output for the batch X ([N, {', '.join(map(str, INPUT_SHAPE))}], float32) to Y", file=sys.stderr)
        return 2
    predict(network_class, *argv)
    return 0
