"""Train a CNN on scikit-learn's handwritten digits with a compiled training step.

    python examples/train_digits.py [--epochs N] [--out DIR] [--seed S] [--quick] [--resume]

The data is ``sklearn.datasets.load_digits``: 1,797 grayscale 8x8 images of the
digits 0-9, bundled with scikit-learn (nothing to download). The script is the
training loop a PyTorch user would write, in jmod:

* a ``nn.Module`` CNN (convolutions, BatchNorm, dropout) built from ``jmod.nn``;
* a NumPy data pipeline: stratified train/test split, shuffling, and random
  one-pixel shifts as augmentation;
* one ``@jmod.jit`` training step (forward, loss, gradients, ``optimizer.step``)
  compiled once and reused for every batch, with BatchNorm's running statistics and
  the dropout random state carried through it;
* a learning-rate schedule set through ``optimizer.param_groups`` (no recompiling);
* a ``tqdm`` progress bar, a ``jmod.save`` checkpoint that is reloaded into a fresh
  model to check it gives the same test accuracy, and a loss/accuracy plot (PNG).

Everything goes to ``--out`` (default ``runs/digits/``). ``--quick`` trains for a few
steps only (5 per epoch, 1 epoch unless ``--epochs`` says otherwise; for CI) and
still writes the checkpoint and the plot.

After every epoch the whole training state (model, optimizer, the jmod and NumPy
random states, epoch, step, history) goes to ``--out/checkpoints/<step>/`` with a
``jmod.checkpoint.CheckpointManager`` (written in the background, the last two
kept). ``--resume`` continues from the latest one: a run stopped after epoch 3 and
resumed ends with exactly the weights of a run that was never stopped (needs
``pip install jmod[checkpoint]``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import jmod
import jmod.nn.functional as F
from jmod import nn


class DigitsCNN(nn.Module):
    """Two conv blocks for 8x8 inputs: (N, 1, 8, 8) -> (N, 10) logits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4x4 -> 2x2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 2 * 2, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


# ------------------------------------------------------------------------------ data


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test): images (N, 1, 8, 8) standardised, labels int32."""
    digits = load_digits()
    x = digits.images.astype(np.float32)[:, None] / 16.0  # pixel values are 0..16
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    mean, std = x_train.mean(), x_train.std()  # statistics of the training split only
    return (x_train - mean) / std, (x_test - mean) / std, y_train, y_test


def random_shift(x: np.ndarray, rng: np.random.Generator, background: float) -> np.ndarray:
    """Shift every image by -1, 0 or +1 pixel in each direction (pad, then crop 8x8)."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=background)
    dy, dx = rng.integers(0, 3, n), rng.integers(0, 3, n)
    rows = (dy[:, None] + np.arange(h))[:, :, None]  # (n, h, 1)
    cols = (dx[:, None] + np.arange(w))[:, None, :]  # (n, 1, w)
    return padded[np.arange(n)[:, None, None], 0, rows, cols][:, None]


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator):
    """Shuffled full batches (the last partial batch is dropped: one shape, one compile)."""
    order = rng.permutation(len(x))
    for i in range(len(x) // batch_size):
        idx = order[i * batch_size : (i + 1) * batch_size]
        yield x[idx], y[idx]


# ------------------------------------------------------------------- compiled steps


@jmod.jit
def train_step(model, optimizer, x, y):
    """One step: forward, loss, gradients, update. Compiled once; state written back."""

    def loss_fn(model):
        logits = model(x)
        return F.cross_entropy(logits, y), logits

    (loss, logits), grads = jmod.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.step(grads)
    return loss, (logits.argmax(-1) == y).mean()


@jmod.jit
def predict(model, x):
    return model(x).argmax(-1)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()  # BatchNorm uses its running statistics, dropout is off
    correct = int((np.asarray(predict(model, x)) == y).sum())
    model.train()
    return correct / len(y)


# --------------------------------------------------------------------------- plot


def plot(history: dict, path: str) -> None:
    """Two panels: training loss per step (log scale) and train/test accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")  # render to a file, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    steps = np.arange(1, len(history["step_loss"]) + 1)
    epoch_end = history["steps_per_epoch"] * np.arange(1, len(history["epoch_loss"]) + 1)
    epoch_end = np.minimum(epoch_end, len(steps))  # a --quick run stops inside its epoch
    ax_loss.plot(steps, history["step_loss"], color="tab:blue", alpha=0.3, lw=1, label="per step")
    ax_loss.plot(epoch_end, history["epoch_loss"], "o-", color="tab:blue", label="epoch mean")
    ax_loss.set(title="Training loss (cross-entropy)", xlabel="step", ylabel="loss (log scale)", yscale="log")
    ax_loss.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax_loss.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax_loss.yaxis.set_minor_formatter(NullFormatter())
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(loc="upper right")

    epochs = np.arange(1, len(history["test_acc"]) + 1)
    train_acc, test_acc = 100 * np.array(history["train_acc"]), 100 * np.array(history["test_acc"])
    ax_acc.plot(epochs, train_acc, "o-", label="train (augmented batches)")
    ax_acc.plot(epochs, test_acc, "s-", label="test")
    ax_acc.annotate(
        f"final test accuracy {test_acc[-1]:.1f}%",
        (epochs[-1], test_acc[-1]),
        xytext=(0.5, 0.45),
        textcoords="axes fraction",
        ha="center",
        arrowprops={"arrowstyle": "->", "color": "gray"},
    )
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_acc.set_ylim(max(0.0, 10 * math.floor(min(train_acc.min(), test_acc.min()) / 10) - 5), 101)
    ax_acc.set_xlim(0.5, len(epochs) + 0.5)
    ax_acc.set_xticks(epochs[:: max(1, len(epochs) // 15)])
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="best")

    fig.suptitle("jmod: a CNN on scikit-learn's 8x8 handwritten digits")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default 15 (1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, cosine decay)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "digits"), help="output directory")
    parser.add_argument("--quick", action="store_true", help="a few steps only (CI): still saves and plots")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else 15)
    steps_cap = 5 if args.quick else None  # steps per epoch in a --quick run
    os.makedirs(args.out, exist_ok=True)

    jmod.manual_seed(args.seed)  # initial weights and dropout masks
    rng = np.random.default_rng(args.seed)  # shuffling and augmentation
    x_train, x_test, y_train, y_test = load_data(args.seed)
    background = float(x_train.min())  # the standardised value of a blank pixel
    print(f"data: {len(x_train)} training and {len(x_test)} test images of shape {x_train.shape[1:]}")

    model = DigitsCNN()
    n_params = sum(p.size for p in model.parameters())
    print(f"model: DigitsCNN, {n_params:,} parameters")
    optimizer = jmod.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)

    steps_per_epoch = min(len(x_train) // args.batch_size, steps_cap or math.inf)
    total = epochs * steps_per_epoch
    history: dict = {
        "step_loss": [],
        "epoch_loss": [],
        "train_acc": [],
        "test_acc": [],
        "steps_per_epoch": steps_per_epoch,
    }
    # The training state, saved after every epoch; --resume loads the latest one.
    manager = jmod.checkpoint.CheckpointManager(os.path.join(args.out, "checkpoints"), max_to_keep=2, async_save=True)

    def training_state(epoch: int, step: int) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": jmod.get_rng_state(),  # dropout masks
            "numpy_rng": rng.bit_generator.state,  # shuffling and augmentation
            "epoch": epoch,
            "step": step,
            "history": history,
        }

    first_epoch, step = 1, 0
    if args.resume and manager.latest_step() is not None:
        saved = manager.restore(None, training_state(0, 0))
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        jmod.set_rng_state(saved["rng"])
        rng.bit_generator.state = json.loads(json.dumps(saved["numpy_rng"]))  # plain dicts
        history = json.loads(json.dumps(saved["history"]))
        first_epoch, step = saved["epoch"] + 1, saved["step"]
        print(f"resumed from the checkpoint of epoch {saved['epoch']} (step {step})")
    start = time.perf_counter()
    epoch = first_epoch - 1
    with tqdm(total=total, initial=step, desc="training", unit="step", ncols=90) as bar:
        for epoch in range(first_epoch, epochs + 1):
            # Cosine decay, set like a torch scheduler would: the new value reaches the
            # compiled step through the optimizer state, without recompiling.
            optimizer.param_groups[0]["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
            model.train()
            losses, accs = [], []
            for xb, yb in batches(x_train, y_train, args.batch_size, rng):
                loss, acc = train_step(model, optimizer, random_shift(xb, rng, background), yb)
                losses.append(loss)
                accs.append(acc)
                step += 1
                bar.update()
                if len(losses) == steps_per_epoch:
                    break
            losses = [float(v) for v in losses]  # one device->host sync per epoch, not per step
            history["step_loss"] += losses
            history["epoch_loss"].append(float(np.mean(losses)))
            history["train_acc"].append(float(np.mean([float(a) for a in accs])))
            history["test_acc"].append(accuracy(model, x_test, y_test))
            bar.set_postfix(loss=f"{history['epoch_loss'][-1]:.3f}", test_acc=f"{100 * history['test_acc'][-1]:.1f}%")
            tqdm.write(
                f"epoch {epoch:2d}/{epochs}  loss {history['epoch_loss'][-1]:.4f}  "
                f"train acc {100 * history['train_acc'][-1]:5.1f}%  test acc {100 * history['test_acc'][-1]:5.1f}%"
            )
            manager.save(step, training_state(epoch, step))  # returns once the arrays are copied
    manager.close()  # waits for the last write
    elapsed = time.perf_counter() - start
    test_acc = history["test_acc"][-1]
    n_correct = round(test_acc * len(y_test))
    print(f"trained {step} steps in {elapsed:.1f}s; train_step compiled {train_step.trace_count} time(s)")
    if not history["test_acc"]:
        print("nothing left to train: the checkpoint is already at the last epoch")
        return float("nan")
    print(f"test accuracy: {100 * test_acc:.2f}% ({n_correct}/{len(y_test)})")

    # Checkpoint: model and optimizer state plus plain values, in one safetensors file.
    ckpt_path = os.path.join(args.out, "digits_cnn.safetensors")
    jmod.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "test_accuracy": test_acc},
        ckpt_path,
    )
    ckpt = jmod.load(ckpt_path)
    restored = DigitsCNN()
    restored.load_state_dict(ckpt["model"])
    reloaded_acc = accuracy(restored, x_test, y_test)
    same = reloaded_acc == test_acc == ckpt["test_accuracy"]
    print(f"checkpoint: {ckpt_path} ({os.path.getsize(ckpt_path) / 1024:.0f} KiB)")
    print(
        f"reloaded into a fresh DigitsCNN: test accuracy {100 * reloaded_acc:.2f}% ({'identical' if same else 'DIFFERENT'})"
    )
    if not same:
        raise SystemExit("the reloaded model does not reproduce the trained model's accuracy")

    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(history, f)
    plot_path = os.path.join(args.out, "digits_training.png")
    plot(history, plot_path)
    print(f"plot: {plot_path}")
    return test_acc


if __name__ == "__main__":
    main()
