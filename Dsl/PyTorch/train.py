"""Trains the network of model.py (next to this file) as cnn would, on one process or many.

Written by cnn's PyTorch writer with recipe.json (loss, optimizer, and for every step its learning rate, momentum and
dropout keys, computed by cnn), epoch_order.npy (the order of the samples in every epoch) and the training data
x_train.npy and y_train.npy. The optimizer's update is written out here with cnn's arithmetic (Dsl/Training/Optimizer.cs),
so a run gives the parameters cnn's own training gives, to float32 rounding; the result is a cnn checkpoint
(param/, state/ and opt/ tensors, the position in the metadata) that `cnn train --resume` continues.

    python3 train.py [--weights F] [--out F] [--steps N] [--device cpu|cuda]
    python3 -m torch.distributed.run --nproc_per_node 2 train.py ...     # DistributedDataParallel: gloo on CPU, nccl on GPUs

(torch 1.13's launcher under Python 3.11, as Debian 12 has them, fails on its own defaults for --redirects and --tee:
give it `--redirects 1 --tee 1`.)

Each global batch is split into contiguous shards, one per process; the gradient is that of the global batch's mean
loss, and batch norm takes the global batch's statistics, so any number of processes gives the same result.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import model  # noqa: E402  (the generated module beside this script)

POSITION_KEYS = ("format", "epoch", "batch", "step")


def f32(value):
    return np.float32(value)


def shard(count, world, rank):
    """Rows [lo, hi) of a global batch of `count` rows that process `rank` of `world` takes (sizes differ by at most one)."""
    q, r = divmod(count, world)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def loss_sum(kind, output, labels):
    """The loss summed over the local rows, and what the global batch's sum is divided by for the mean."""
    if kind == "cross_entropy":
        return torch.nn.functional.cross_entropy(output, labels, reduction="sum"), 1
    if kind == "nll":
        return torch.nn.functional.nll_loss(output, labels, reduction="sum"), 1
    if kind == "mse":
        target = torch.nn.functional.one_hot(labels, output.shape[1]).to(output.dtype)
        return torch.nn.functional.mse_loss(output, target, reduction="sum"), output.shape[1]
    raise ValueError(f"recipe.json: unknown loss '{kind}'")


def update(recipe, parameters, slots, lr, momentum, step):
    """One step of cnn's optimizer (Dsl/Training/Optimizer.cs) on every trainable parameter, in place."""
    opt = recipe["optimizer"]
    decay = f32(opt["weight_decay"])
    lr = f32(lr)
    for name, w in parameters:
        g = w.grad
        if decay != 0:
            g = w * float(decay) + g
        if opt["kind"] == "sgd":
            if f32(opt["momentum"]) == 0:
                w.copy_(g * float(-lr) + w)
                continue
            mu = float(f32(momentum if momentum is not None else opt["momentum"]))
            v = slots["velocity"][name]
            v.copy_(v * mu + g)
            d = v * mu + g if opt["nesterov"] else v
            w.copy_(d * float(-lr) + w)
        elif opt["kind"] == "adam":
            b1 = f32(momentum if momentum is not None else opt["beta1"])
            b2, eps = f32(opt["beta2"]), f32(opt["epsilon"])
            t = f32(step)
            step_size = lr / (f32(1) - b1 ** t)
            sqrt_c2 = np.sqrt(f32(1) - b2 ** t)
            m, v = slots["m"][name], slots["v"][name]
            m.copy_(m * float(b1) + g * float(f32(1) - b1))
            v.copy_(v * float(b2) + (g * float(f32(1) - b2)) * g)
            w.copy_(w - (m * float(step_size)) / (torch.sqrt(v) / float(sqrt_c2) + float(eps)))
        else:
            raise ValueError(f"recipe.json: unknown optimizer '{opt['kind']}'")


def slot_names(recipe):
    opt = recipe["optimizer"]
    if opt["kind"] == "sgd":
        return ["velocity"] if f32(opt["momentum"]) != 0 else []
    return ["m", "v"]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=os.path.join(HERE, "weights.safetensors"), help="the checkpoint to start from")
    parser.add_argument("--out", default=os.path.join(HERE, "trained.safetensors"), help="the checkpoint to write")
    parser.add_argument("--data", default=HERE, help="the folder of x_train.npy and y_train.npy")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps (default: to the recipe's last epoch)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    with open(os.path.join(HERE, "recipe.json"), encoding="utf-8") as f:
        recipe = json.load(f)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
        # Batch-norm statistics travel in a group of their own, apart from DistributedDataParallel's gradient buckets.
        model.CONTEXT.sync_group = dist.new_group()
    say = (lambda *a: None) if args.quiet or rank != 0 else (lambda *a: print(*a, flush=True))

    net = model.Network()
    parameters, state, slots, metadata = model.read_checkpoint(args.weights)
    net.load_state_dict({**parameters, **state}, strict=True)
    net.to(device)
    net.train()
    trainable = [(name, p) for name, p in net.named_parameters() if p.requires_grad]
    for slot in slot_names(recipe):
        given = slots.get(slot, {})
        slots[slot] = {name: (given[name] if name in given else torch.zeros_like(p)).to(device) for name, p in trainable}
    epoch = int(metadata.get("epoch", "1"))
    batch = int(metadata.get("batch", "0"))
    step = int(metadata.get("step", "0"))
    batches, epochs, size = recipe["batches_per_epoch"], recipe["epochs"], recipe["batch_size"]
    done_before = (epoch - recipe["first_epoch"]) * batches + batch - recipe["first_batch"]
    if step - recipe["first_step"] != done_before or done_before < 0:
        raise SystemExit(f"'{args.weights}' is at epoch {epoch}, batch {batch}, step {step}; the recipe starts at epoch "
                         f"{recipe['first_epoch']}, batch {recipe['first_batch']}, step {recipe['first_step']}: not a point of this run")

    x = np.load(os.path.join(args.data, "x_train.npy"), mmap_mode="r", allow_pickle=False)
    y = np.load(os.path.join(args.data, "y_train.npy"), allow_pickle=False).astype(np.int64)
    order = np.load(os.path.join(HERE, "epoch_order.npy"), allow_pickle=False)
    if x.shape[0] != recipe["count"] or tuple(x.shape[1:]) != model.INPUT_SHAPE or y.shape != (recipe["count"],):
        raise SystemExit(f"x_train.npy {list(x.shape)} and y_train.npy {list(y.shape)} are not the {recipe['count']} samples "
                         f"of shape {list(model.INPUT_SHAPE)} the recipe was made for")
    dropouts = dict(net.named_modules())
    dropouts = [dropouts[path.replace("/", ".")] for path in recipe["dropout_paths"]]
    auxiliaries = [m for m in net.modules() if isinstance(m, model.Auxiliary)]
    trained = net if world == 1 else DistributedDataParallel(
        net, device_ids=[local_rank] if use_cuda else None, broadcast_buffers=False)

    taken = 0
    while epoch <= epochs and (args.steps is None or taken < args.steps):
        rows_of_epoch = order[epoch - recipe["first_epoch"]]
        loss_total, seen = 0.0, 0
        while batch < batches and (args.steps is None or taken < args.steps):
            k = step - recipe["first_step"]
            start = batch * size
            rows = rows_of_epoch[start:start + size]
            lo, hi = shard(len(rows), world, rank)
            mine = rows[lo:hi]
            xb = torch.from_numpy(np.ascontiguousarray(x[mine], dtype=np.float32)).to(device)
            yb = torch.from_numpy(y[mine]).to(device)
            model.CONTEXT.row_offset = lo
            for module, key in zip(dropouts, recipe["dropout_keys"][k]):
                module.key = key
            total, per_row = loss_sum(recipe["loss"], trained(xb), yb)
            for head in auxiliaries:  # cnn's total: the main loss plus each auxiliary head's, weighted
                total = total + head.weight * loss_sum(recipe["loss"], head.output, yb)[0]
            # DistributedDataParallel averages the processes' gradients: scaled by world / (global count), their mean is
            # the gradient of the global batch's mean loss, whatever the shards' sizes.
            (total * (world / (len(rows) * per_row))).backward()
            momentum = recipe["momentum"][k] if recipe["momentum"] is not None else None  # None: the optimizer's own
            with torch.no_grad():
                update(recipe, trainable, slots, recipe["learning_rate"][k], momentum, step + 1)
            for _, p in trainable:
                p.grad = None
            reported = total.detach().double().reshape(1)
            if world > 1:
                dist.all_reduce(reported)
            loss_total += reported.item() / per_row
            seen += len(rows)
            step, batch, taken = step + 1, batch + 1, taken + 1
        say(f"epoch {epoch}/{epochs}: {batch}/{batches} batches, mean loss {loss_total / max(seen, 1):.6f} over {seen} samples this run")
        if batch == batches:
            epoch, batch = epoch + 1, 0

    if rank == 0:
        tensors = {"param/" + k.replace(".", "/"): v for k, v in net.named_parameters()}
        tensors.update({"state/" + k.replace(".", "/"): v for k, v in net.named_buffers()})
        for slot, values in slots.items():
            tensors.update({f"opt/{slot}/" + k.replace(".", "/"): v for k, v in values.items()})
        meta = {k: v for k, v in metadata.items() if k not in POSITION_KEYS}
        meta.update({"format": model.CHECKPOINT_FORMAT, "epoch": str(epoch), "batch": str(batch), "step": str(step),
                     "pytorch_processes": str(world)})
        model.write_safetensors(args.out, tensors, meta)
        say(f"wrote {args.out}: epoch {epoch}, batch {batch}, step {step}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
