"""Big-model mechanics: first-step latency with and without ``scan_blocks``, memory of
activation checkpointing and of compiled attention (issue 18).

One process, everything side by side (the machine is shared: orders alternate between
rounds and the tables show medians)::

    python benchmarks/big_model.py latency            # GPT depths 4/16/48, jmod/pure JAX, loop/scan
    python benchmarks/big_model.py checkpoint-memory  # 12-layer GPT step, temp bytes with/without checkpoint
    python benchmarks/big_model.py attention-memory   # compiled SDPA forward+backward at T=2048

``latency`` times the first call of a training step (trace + compile + one run) after
``jax.clear_caches()``, for a small-width GPT-2 (width does not change compile time
much; the number of operations does): jmod's ``tests/models/gpt_jmod.py`` with the
block loop or ``jmod.nn.utils.scan_blocks`` and jmod's AdamW in a ``jmod.jit`` step,
against a hand-written pure-JAX GPT with the same shapes (a Python loop over per-layer
parameter dicts, or ``lax.scan`` over stacked parameters) and ``optax.adamw``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jmod  # noqa: E402
from jmod.nn import functional as F  # noqa: E402
from jmod.nn.utils import scan_blocks  # noqa: E402
from jmod.utils.checkpoint import checkpoint  # noqa: E402
from tests.models.gpt_jmod import GPT, GPTConfig  # noqa: E402


class ScanGPT(GPT):
    """``GPT`` with its block loop replaced by ``scan_blocks`` (the one-line change) or
    wrapped in ``checkpoint`` per block."""

    def __init__(self, config: GPTConfig, mode: str = "loop") -> None:
        super().__init__(config)
        self.mode = mode

    def forward(self, idx, targets=None):
        b, t = idx.shape
        pos = jnp.arange(0, t, dtype=jnp.int32)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        if self.mode == "scan":
            x = scan_blocks(self.transformer.h, x)
        elif self.mode == "scan+checkpoint":
            x = scan_blocks(self.transformer.h, x, checkpoint=True)
        elif self.mode == "checkpoint":
            for block in self.transformer.h:
                x = checkpoint(block, x, use_reentrant=False)
        else:
            for block in self.transformer.h:
                x = block(x)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def _data(cfg: GPTConfig, batch: int) -> jax.Array:
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.integers(0, cfg.vocab_size, (batch, cfg.block_size)), dtype=jnp.int32)


# ----------------------------------------------------------------------- jmod step
def jmod_first_step(cfg: GPTConfig, batch: int, mode: str) -> float:
    jmod.manual_seed(0)
    model = ScanGPT(cfg, mode)
    opt = jmod.optim.AdamW(model.parameters(), lr=1e-3)
    idx = _data(cfg, batch)

    @jmod.jit
    def step(model, opt, idx):
        loss, grads = jmod.value_and_grad(lambda m: m(idx, idx)[1])(model)
        opt.step(grads)
        return loss

    t0 = time.perf_counter()
    step(model, opt, idx).block_until_ready()
    return time.perf_counter() - t0


# ------------------------------------------------------------------- pure JAX step
def _ln(p: dict, x: jax.Array) -> jax.Array:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"]


def _block(p: dict, x: jax.Array, n_head: int) -> jax.Array:
    B, T, C = x.shape
    h = _ln(p["ln1"], x)
    q, k, v = jnp.split(h @ p["attn_w"] + p["attn_b"], 3, axis=-1)
    q, k, v = (a.reshape(B, T, n_head, C // n_head).swapaxes(1, 2) for a in (q, k, v))
    att = (q @ k.swapaxes(-1, -2)) / math.sqrt(C // n_head)
    att = jnp.where(jnp.tril(jnp.ones((T, T), bool)), att, -jnp.inf)
    y = (jax.nn.softmax(att, -1) @ v).swapaxes(1, 2).reshape(B, T, C)
    x = x + y @ p["proj_w"] + p["proj_b"]
    h = _ln(p["ln2"], x) @ p["fc_w"] + p["fc_b"]
    # torch's exact GELU through lax.erf (jax.nn.gelu(approximate=False) goes through
    # erfc, which XLA expands into a long polynomial: twice the HLO, 3x the compile time)
    h = 0.5 * h * (1.0 + jax.lax.erf(h / math.sqrt(2.0)))
    return x + h @ p["fc2_w"] + p["fc2_b"]


def _block_params(key: jax.Array, C: int) -> dict:
    k = jax.random.split(key, 4)
    n = lambda key, a, b: 0.02 * jax.random.normal(key, (a, b))  # noqa: E731
    ln = lambda: {"g": jnp.ones(C), "b": jnp.zeros(C)}  # noqa: E731
    return {
        "ln1": ln(), "ln2": ln(),
        "attn_w": n(k[0], C, 3 * C), "attn_b": jnp.zeros(3 * C),
        "proj_w": n(k[1], C, C), "proj_b": jnp.zeros(C),
        "fc_w": n(k[2], C, 4 * C), "fc_b": jnp.zeros(4 * C),
        "fc2_w": n(k[3], 4 * C, C), "fc2_b": jnp.zeros(C),
    }  # fmt: skip


def pure_jax_first_step(cfg: GPTConfig, batch: int, mode: str) -> float:
    C = cfg.n_embd
    keys = jax.random.split(jax.random.key(0), cfg.n_layer + 2)
    blocks = [_block_params(keys[i], C) for i in range(cfg.n_layer)]
    if mode == "scan":
        blocks = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *blocks)
    params = {
        "wte": 0.02 * jax.random.normal(keys[-1], (cfg.vocab_size, C)),
        "wpe": 0.02 * jax.random.normal(keys[-2], (cfg.block_size, C)),
        "blocks": blocks,
        "ln_f": {"g": jnp.ones(C), "b": jnp.zeros(C)},
    }
    tx = optax.adamw(1e-3)
    opt_state = tx.init(params)
    idx = _data(cfg, batch)

    def loss_fn(p, idx):
        x = p["wte"][idx] + p["wpe"][: idx.shape[1]]
        if mode == "scan":
            x, _ = jax.lax.scan(lambda x, bp: (_block(bp, x, cfg.n_head), None), x, p["blocks"])
        else:
            for bp in p["blocks"]:
                x = _block(bp, x, cfg.n_head)
        logits = _ln(p["ln_f"], x) @ p["wte"].T
        return optax.softmax_cross_entropy_with_integer_labels(logits, idx).mean()

    @jax.jit
    def step(params, opt_state, idx):
        loss, grads = jax.value_and_grad(loss_fn)(params, idx)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    t0 = time.perf_counter()
    step(params, opt_state, idx)[2].block_until_ready()
    return time.perf_counter() - t0


def latency(depths: list[int], rounds: int) -> None:
    runners = {
        "jmod loop": lambda c: jmod_first_step(c, 4, "loop"),
        "jmod scan": lambda c: jmod_first_step(c, 4, "scan"),
        "JAX loop": lambda c: pure_jax_first_step(c, 4, "loop"),
        "JAX scan": lambda c: pure_jax_first_step(c, 4, "scan"),
    }
    times: dict[tuple[str, int], list[float]] = {}
    jobs = [(name, d) for d in depths for name in runners]
    for r in range(rounds):
        for name, d in jobs if r % 2 == 0 else jobs[::-1]:
            cfg = GPTConfig(block_size=32, vocab_size=256, n_layer=d, n_head=4, n_embd=64, dropout=0.0)
            jax.clear_caches()
            times.setdefault((name, d), []).append(runners[name](cfg))
            print(f"  round {r} {name:10s} depth {d:3d}: {times[(name, d)][-1]:.2f} s", file=sys.stderr)
    print(f"first-step latency (trace + compile + run), median of {rounds}, seconds")
    print(f"{'':12s}" + "".join(f"{'depth ' + str(d):>11s}" for d in depths) + f"{'max/min depth':>15s}")
    for name in runners:
        med = [statistics.median(times[(name, d)]) for d in depths]
        print(f"{name:12s}" + "".join(f"{m:11.2f}" for m in med) + f"{med[-1] / med[0]:14.2f}x")


# -------------------------------------------------------------------- memory
def _compiled_memory(fn, *args, options: dict | None = None) -> tuple[int, int]:
    compiled = jax.jit(fn, compiler_options=options).lower(*args).compile()
    ma = compiled.memory_analysis()
    return ma.temp_size_in_bytes, ma.argument_size_in_bytes + ma.output_size_in_bytes


def checkpoint_memory(n_layer: int = 12) -> None:
    """Temp memory of the compiled step. On CPU run it twice: as is, and with
    ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``: XLA:CPU's
    default scheduler optimizes for concurrency and moves the recomputation of an
    unrolled checkpointed graph next to the forward, which keeps every activation alive
    (the option only takes effect from XLA_FLAGS, not from jit's compiler_options)."""
    import os

    cfg = GPTConfig(block_size=256, vocab_size=1024, n_layer=n_layer, n_head=4, n_embd=128, dropout=0.0)
    idx = _data(cfg, 8)
    print(f"compiled training-step temp memory, {n_layer}-layer GPT (C=128, T=256, batch 8), XLA memory_analysis")
    print(f"  XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    for mode in ("loop", "checkpoint", "scan", "scan+checkpoint"):
        jmod.manual_seed(0)
        model = ScanGPT(cfg, mode)
        params = dict(model.named_parameters())

        def step(p, idx, model=model):
            return jax.value_and_grad(lambda q: jmod.func.functional_call(model, q, (idx, idx))[1])(p)

        temp, io = _compiled_memory(step, params, idx)
        print(f"  {mode:16s} temp {temp / 2**20:7.1f} MiB   (arguments+outputs {io / 2**20:.1f} MiB)")


def attention_memory(T: int = 2048) -> None:
    from jmod._src.functional import attention as A

    B, H, E = 1, 8, 64
    q = k = v = jnp.zeros((B, H, T, E), jnp.float32)
    rows = []
    for label, force_math in (("math path (before)", True), ("jax.nn.dot_product_attention", False)):
        def loss(q, k, v, force_math=force_math):
            with A._force_math_path(force_math):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()

        fwd = _compiled_memory(lambda q, k, v, f=force_math: loss(q, k, v, f), q, k, v)
        bwd = _compiled_memory(jax.grad(loss, argnums=(0, 1, 2)), q, k, v)
        rows.append((label, fwd[0], bwd[0]))
    print(f"compiled causal SDPA, B={B} H={H} T={T} E={E} float32, XLA memory_analysis temp bytes")
    for label, f, b in rows:
        print(f"  {label:30s} forward {f / 2**20:8.1f} MiB   forward+backward {b / 2**20:8.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["latency", "checkpoint-memory", "attention-memory"])
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 16, 48])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if args.what == "latency":
        latency(args.depths, args.rounds)
    elif args.what == "checkpoint-memory":
        checkpoint_memory()
    else:
        attention_memory()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
