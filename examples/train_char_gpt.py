"""Train a small GPT, written the nanoGPT way, character by character on Python's own source.

    python examples/train_char_gpt.py [--iters N] [--out DIR] [--seed S] [--quick]

The model is Karpathy's nanoGPT (``model.py``) ported line by line to jmod:
``CausalSelfAttention`` on ``F.scaled_dot_product_attention(is_causal=True)``, an
MLP with GELU, pre-LayerNorm blocks, learned position embeddings, the token
embedding tied to the output head, and GPT-2's initialisation (residual projections
scaled by ``1/sqrt(2 * n_layer)``). The training loop is nanoGPT's ``train.py`` too:

* data: the source code of a fixed list of standard-library modules, read through
  ``inspect.getsource`` (it ships with every Python: nothing to download), encoded
  one character per token; the first 90% trains, the rest validates;
* ``jmod.optim.AdamW`` with two parameter groups (weight decay on matrices and
  embeddings, none on biases and LayerNorm weights), chosen by
  ``jmod.optim.param_groups``;
* a linear warm-up then cosine decay from ``jmod.optim.lr_scheduler`` (``LinearLR``
  then ``CosineAnnealingLR`` in a ``SequentialLR``), stepped every iteration: the
  learning rate reaches the compiled step without recompiling;
* one ``@jmod.jit`` training step: forward, loss, gradients,
  ``nn.utils.clip_grad_norm_`` (it works on the gradient dict inside compiled
  code), ``optimizer.step``;
* a ``tqdm`` progress bar, periodic train/validation loss estimates, a ``jmod.save``
  checkpoint (model, optimizer, scheduler, vocabulary) reloaded into a fresh model to
  check it gives the same validation loss, a loss plot (PNG), and samples drawn with
  ``jmod.multinomial`` inside a compiled sampling step (temperature, top-k).

Everything goes to ``--out`` (default ``runs/char_gpt/``). ``--quick`` trains a tiny
model for a few steps (for CI) and still saves, reloads, plots and samples.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

import jmod
import jmod.nn.functional as F
from jmod import nn
from jmod.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

# The standard-library modules whose source is the corpus (about 1 MB of Python).
CORPUS_MODULES = (
    "argparse", "ast", "bisect", "calendar", "collections", "configparser", "contextlib", "copy",
    "dataclasses", "difflib", "enum", "fractions", "functools", "heapq", "inspect", "ipaddress",
    "operator", "pprint", "random", "shlex", "statistics", "string", "textwrap", "typing",
)  # fmt: skip


# ----------------------------------------------------------------------------- model


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # nanoGPT's choice: no biases in Linear and LayerNorm


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = jnp.split(self.c_attn(x), 3, axis=2)  # torch: .split(self.n_embd, dim=2)
        # (B, T, C) -> (B, nh, T, hs); torch: .view(B, T, nh, hs).transpose(1, 2)
        q, k, v = (t.reshape(B, T, self.n_head, C // self.n_head).transpose(0, 2, 1, 3) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(0, 2, 1, 3).reshape(B, T, C)  # re-assemble all head outputs side by side
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # weight tying, as nanoGPT writes it: one parameter, in both modules
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if pn.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def get_num_params(self, non_embedding: bool = True) -> int:
        n_params = sum(p.size for p in self.parameters())
        if non_embedding:
            n_params -= self.transformer.wpe.weight.size
        return n_params

    def forward(self, idx, targets=None):
        b, t = idx.shape
        assert t <= self.config.block_size, f"Cannot forward sequence of length {t}, block size is only {self.config.block_size}"
        pos = jnp.arange(t)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        # every 2-D parameter (matmul weights, embeddings) decays; biases and norms do not
        groups = jmod.optim.param_groups(self, {"where": lambda name, p: p.ndim < 2, "weight_decay": 0.0})
        decay, no_decay = (sum(p.size for _, p in g["params"]) for g in groups)  # (name, array) pairs
        print(f"num decayed parameter tensors: {len(groups[0]['params'])}, with {decay:,} parameters")
        print(f"num non-decayed parameter tensors: {len(groups[1]['params'])}, with {no_decay:,} parameters")
        return jmod.optim.AdamW(groups, lr=learning_rate, betas=betas, weight_decay=weight_decay)


# ------------------------------------------------------------------------------ data


def load_corpus() -> str:
    """The concatenated source of CORPUS_MODULES, each file preceded by a header line."""
    parts = []
    for name in CORPUS_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        parts.append(f"# ===== {name}.py =====\n{source}")
    return "\n".join(parts)


def get_batch(data: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator):
    """nanoGPT's get_batch: random windows, targets shifted by one character."""
    ix = rng.integers(0, len(data) - block_size - 1, batch_size)
    x = np.stack([data[i : i + block_size] for i in ix])
    y = np.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return jnp.asarray(x), jnp.asarray(y)


# ------------------------------------------------------------------- compiled steps


def make_train_step(grad_clip: float):
    @jmod.jit
    def train_step(model, optimizer, x, y):
        loss, grads = jmod.value_and_grad(lambda m: m(x, y)[1])(model)
        norm = nn.utils.clip_grad_norm_(grads, grad_clip)  # clips the gradient dict in place
        optimizer.step(grads)
        return loss, norm

    return train_step


@jmod.jit
def eval_loss(model, x, y):
    return model(x, y)[1]


def estimate_loss(model, splits: dict, config: GPTConfig, batch_size: int, eval_iters: int, seed: int) -> dict:
    """Mean loss over ``eval_iters`` batches per split, in eval mode (nanoGPT's estimate_loss)."""
    model.eval()
    out = {}
    for split, data in splits.items():
        rng = np.random.default_rng(seed)  # the same batches every time: comparable estimates
        losses = [eval_loss(model, *get_batch(data, config.block_size, batch_size, rng)) for _ in range(eval_iters)]
        out[split] = float(np.mean([float(v) for v in losses]))
    model.train()
    return out


def make_sampler(temperature: float, top_k: int | None):
    @jmod.jit
    def next_token(model, window):
        """Sample the token after ``window`` (the last ``block_size`` tokens); return it
        and the window moved on by one, so every call has the same shapes."""
        logits, _ = model(window)
        logits = logits[:, -1, :] / temperature
        if top_k is not None:
            v = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0]
            logits = jnp.where(logits < v[:, [-1]], -jnp.inf, logits)
        probs = F.softmax(logits, dim=-1)
        idx_next = jmod.multinomial(probs, num_samples=1)  # torch.multinomial, drawn from jmod's generator
        return idx_next, jnp.concatenate([window[:, 1:], idx_next], axis=1)

    return next_token


def generate(model, next_token, idx, max_new_tokens: int):
    """nanoGPT's generate over a fixed-size window: ``idx`` holds at least ``block_size``
    tokens, and the compiled step slides the window, so it compiles once (slicing a
    growing sequence eagerly would compile a new slice for every length)."""
    model.eval()
    window = idx[:, -model.config.block_size :]
    new = []
    for _ in range(max_new_tokens):
        idx_next, window = next_token(model, window)
        new.append(idx_next)
    model.train()
    return jnp.concatenate([idx, *new], axis=1)


# --------------------------------------------------------------------------- plot


def plot(history: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # render to a file, no display needed
    import matplotlib.pyplot as plt

    fig, (ax, ax_lr) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    steps = np.arange(1, len(history["train_loss"]) + 1)
    ax.plot(steps, history["train_loss"], color="tab:blue", alpha=0.3, lw=1, label="train (per step)")
    ax.plot(history["eval_iter"], history["eval_train"], "o-", color="tab:blue", label="train (estimate)")
    ax.plot(history["eval_iter"], history["eval_val"], "s-", color="tab:orange", label="validation (estimate)")
    ax.set(title="Cross-entropy per character", xlabel="iteration", ylabel="loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    ax_lr.plot(steps, history["lr"], color="tab:green")
    ax_lr.set(title="Learning rate (warm-up + cosine)", xlabel="iteration")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax_lr.grid(alpha=0.3)
    fig.suptitle("jmod: a character-level GPT on the Python standard library's source")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=1000, help="training iterations")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "char_gpt"), help="output directory")
    parser.add_argument("--quick", action="store_true", help="a tiny model, a few steps (CI): still saves and samples")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.quick:
        config = GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=32)
        iters, warmup, eval_interval, eval_iters, batch_size, n_sample = 6, 2, 3, 2, 4, 40
    else:
        config = GPTConfig()
        iters, warmup, eval_interval, eval_iters, batch_size, n_sample = args.iters, 100, 200, 10, args.batch_size, 500
    weight_decay, betas, grad_clip, min_lr = 0.1, (0.9, 0.99), 1.0, args.lr / 10

    text = load_corpus()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    config.vocab_size = len(chars)
    data = np.array([stoi[c] for c in text], dtype=np.int32)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}
    print(f"data: {len(text):,} characters of Python source from {len(CORPUS_MODULES)} standard-library modules, "
          f"vocabulary of {len(chars)}; {n:,} train / {len(data) - n:,} validation")

    jmod.manual_seed(args.seed)  # initial weights, dropout and sampling
    rng = np.random.default_rng(args.seed)  # batches
    model = GPT(config)
    print(f"model: GPT {config.n_layer} layers, {config.n_head} heads, {config.n_embd} wide, context "
          f"{config.block_size}: {model.get_num_params() / 1e6:.2f}M parameters")
    optimizer = model.configure_optimizers(weight_decay, args.lr, betas)
    scheduler = SequentialLR(
        optimizer,
        [LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup),
         CosineAnnealingLR(optimizer, T_max=iters - warmup, eta_min=min_lr)],
        milestones=[warmup],
    )  # fmt: skip
    train_step = make_train_step(grad_clip)

    history: dict = {"train_loss": [], "lr": [], "eval_iter": [], "eval_train": [], "eval_val": []}
    start = time.perf_counter()
    losses = []
    with tqdm(total=iters, desc="training", unit="it", ncols=90) as bar:
        for it in range(1, iters + 1):
            history["lr"].append(scheduler.get_last_lr()[0])
            loss, _ = train_step(model, optimizer, *get_batch(splits["train"], config.block_size, batch_size, rng))
            scheduler.step()
            losses.append(loss)
            bar.update()
            if it % eval_interval == 0 or it == iters:
                history["train_loss"] += [float(v) for v in losses]  # one device->host sync per interval
                losses = []
                est = estimate_loss(model, splits, config, batch_size, eval_iters, args.seed)
                history["eval_iter"].append(it)
                history["eval_train"].append(est["train"])
                history["eval_val"].append(est["val"])
                bar.set_postfix(train=f"{est['train']:.3f}", val=f"{est['val']:.3f}")
                tqdm.write(f"step {it:5d}: train loss {est['train']:.4f}, val loss {est['val']:.4f}")
    elapsed = time.perf_counter() - start
    print(f"trained {iters} iterations in {elapsed:.1f}s ({1e3 * elapsed / iters:.0f} ms/it, evaluations included); "
          f"train_step compiled {train_step.trace_count} time(s)")
    val = history["eval_val"][-1]
    print(f"final validation loss: {val:.4f} nats/char ({val / math.log(2):.3f} bits/char)")

    # Checkpoint: model, optimizer and scheduler state, the config and the vocabulary.
    ckpt_path = os.path.join(args.out, "char_gpt.safetensors")
    jmod.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler_last_epoch": scheduler.last_epoch,
            "config": {k: v for k, v in asdict(config).items()},
            "vocab": np.array([ord(c) for c in chars], dtype=np.int32),
        },
        ckpt_path,
    )
    ckpt = jmod.load(ckpt_path)
    restored = GPT(GPTConfig(**{k: type(getattr(config, k))(v) for k, v in ckpt["config"].items()}))
    restored.load_state_dict(ckpt["model"])
    same_vocab = "".join(chr(int(c)) for c in np.asarray(ckpt["vocab"])) == "".join(chars)
    reloaded = estimate_loss(restored, {"val": splits["val"]}, config, batch_size, eval_iters, args.seed)["val"]
    same = same_vocab and reloaded == val
    print(f"checkpoint: {ckpt_path} ({os.path.getsize(ckpt_path) / 1024:.0f} KiB)")
    print(f"reloaded into a fresh GPT: val loss {reloaded:.4f} ({'identical' if same else 'DIFFERENT'})")
    if not same:
        raise SystemExit("the reloaded model does not reproduce the trained model's validation loss")

    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(history, f)
    plot_path = os.path.join(args.out, "char_gpt_loss.png")
    plot(history, plot_path)
    print(f"plot: {plot_path}")

    # Sampling: the context starts as blank lines, so the model writes from scratch.
    next_token = make_sampler(temperature=0.8, top_k=20)
    context = jnp.full((1, config.block_size), stoi["\n"], dtype=jnp.int32)
    out = generate(restored, next_token, context, n_sample)
    sample = "".join(chars[int(i)] for i in np.asarray(out[0, config.block_size :]))
    print(f"sample ({n_sample} characters, temperature 0.8, top-k 20; next_token compiled "
          f"{next_token.trace_count} time(s)):")
    print("-" * 60)
    print(sample)
    print("-" * 60)
    return {"val_loss": val, "sample": sample}


if __name__ == "__main__":
    main()
