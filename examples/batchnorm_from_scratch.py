"""Batch normalization from scratch (d2l.ai, section 8.5), trained under ``jmod.jit``.

    python examples/batchnorm_from_scratch.py [--epochs N] [--quick]

The classic from-scratch ``BatchNorm`` of *Dive into Deep Learning*: ``gamma`` and
``beta`` are parameters, while ``moving_mean`` and ``moving_var`` are plain array
attributes that ``forward`` replaces on every training step; ``self.training``
chooses between batch statistics (training) and the moving statistics (evaluation).
The code is d2l's PyTorch code with ``jnp`` for ``torch``.

It goes inside d2l's LeNet (sigmoid activations, average pooling) and trains on
scikit-learn's 8x8 digits, upscaled and padded to 28x28 like Fashion-MNIST. The
training step is compiled with ``jmod.jit``: the new moving statistics computed
inside the compiled step are written back to the module after every call, exactly
as eager PyTorch would leave them. The script prints the statistics as they move
and then compares evaluation with the moving statistics against evaluation with
batch statistics.
"""

from __future__ import annotations

import argparse
import copy

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import jmod
import jmod.nn.functional as F
from jmod import nn


def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, training):
    if not training:
        # Evaluation: normalise with the moving statistics.
        X_hat = (X - moving_mean) / jnp.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # Fully connected layer: statistics over the batch, per feature.
            mean = X.mean(axis=0)
            var = ((X - mean) ** 2).mean(axis=0)
        else:
            # Convolutional layer: statistics over batch and space, per channel.
            mean = X.mean(axis=(0, 2, 3), keepdims=True)
            var = ((X - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        X_hat = (X - mean) / jnp.sqrt(var + eps)
        # Update the moving statistics (torch: .data; here: no gradient through them).
        moving_mean = (1.0 - momentum) * moving_mean + momentum * jax.lax.stop_gradient(mean)
        moving_var = (1.0 - momentum) * moving_var + momentum * jax.lax.stop_gradient(var)
    Y = gamma * X_hat + beta
    return Y, moving_mean, moving_var


class BatchNorm(nn.Module):
    # num_features: outputs of a fully connected layer, or output channels of a conv layer.
    # num_dims: 2 for a fully connected layer, 4 for a convolutional layer.
    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = (1, num_features) if num_dims == 2 else (1, num_features, 1, 1)
        # Scale and shift: parameters, trained by the optimizer.
        self.gamma = nn.Parameter(jnp.ones(shape))
        self.beta = nn.Parameter(jnp.zeros(shape))
        # Moving statistics: plain array attributes (not parameters, not buffers).
        self.moving_mean = jnp.zeros(shape)
        self.moving_var = jnp.ones(shape)

    def forward(self, X):
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, eps=1e-5, momentum=0.1, training=self.training
        )
        return Y


def lenet_bn() -> nn.Sequential:
    """d2l's LeNet with batch normalization, for 1x28x28 inputs."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), BatchNorm(6, num_dims=4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), BatchNorm(16, num_dims=4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), BatchNorm(120, num_dims=2), nn.Sigmoid(),
        nn.Linear(120, 84), BatchNorm(84, num_dims=2), nn.Sigmoid(),
        nn.Linear(84, 10),
    )  # fmt: skip


def load_data(seed: int):
    """sklearn digits as 1x28x28 images: each pixel becomes 3x3 (24x24), then 2 pixels of padding."""
    digits = load_digits()
    x = np.kron(digits.images / 16.0, np.ones((3, 3))).astype(np.float32)
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
    y = digits.target.astype(np.int32)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=seed)


@jmod.jit
def train_step(net, optimizer, X, y):
    loss, grads = jmod.value_and_grad(lambda net: F.cross_entropy(net(X), y))(net)
    optimizer.step(grads)
    return loss


@jmod.jit
def forward(net, X):
    return net(X)


def accuracy(logits, y) -> float:
    return float((np.asarray(logits.argmax(-1)) == y).mean())


def fmt(a) -> str:
    return "[" + ", ".join(f"{v:+.3f}" for v in np.asarray(a).reshape(-1)[:4]) + ", ...]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.9, help="initial SGD learning rate (d2l uses 1.0)")
    parser.add_argument("--quick", action="store_true", help="train for 2 short epochs (CI)")
    args = parser.parse_args(argv)
    epochs, steps_per_epoch = (2, 3) if args.quick else (args.epochs, None)

    jmod.manual_seed(0)
    rng = np.random.default_rng(0)
    x_train, x_test, y_train, y_test = load_data(seed=0)
    print(f"data: {len(x_train)} training, {len(x_test)} test images of shape {x_train.shape[1:]}")

    net = lenet_bn()
    bn = net[1]  # the first BatchNorm (after conv1, 6 channels)
    optimizer = jmod.optim.SGD(net.parameters(), lr=args.lr)
    print("moving_mean, moving_var are in state_dict():", "1.moving_mean" in net.state_dict())
    print("first BatchNorm before training:")
    print(f"  moving_mean {fmt(bn.moving_mean)}  moving_var {fmt(bn.moving_var)}")

    n_batches = len(x_train) // args.batch_size
    for epoch in range(1, epochs + 1):
        # Linear decay to 0 (a torch LambdaLR): the network, and so the statistics the
        # moving averages track, settle down by the end of training.
        optimizer.param_groups[0]["lr"] = args.lr * (1 - (epoch - 1) / epochs)
        net.train()
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(steps_per_epoch or n_batches):
            idx = order[i * args.batch_size : (i + 1) * args.batch_size]
            losses.append(train_step(net, optimizer, x_train[idx], y_train[idx]))
        # Evaluation uses the moving statistics. After the first epoch they still lag
        # behind the quickly changing network, so test accuracy is poor at first.
        net.eval()
        acc = accuracy(forward(net, x_test), y_test)
        print(
            f"epoch {epoch:2d}: loss {float(np.mean(losses)):.3f}, test acc {100 * acc:5.1f}% | "
            f"moving_mean {fmt(bn.moving_mean)}  moving_var {fmt(bn.moving_var)}"
        )
    print(
        f"train_step compiled {train_step.trace_count} time(s), for all {epochs * (steps_per_epoch or n_batches)} steps"
    )
    print("learned gamma:", fmt(bn.gamma), " beta:", fmt(bn.beta))

    # Evaluation mode uses the moving statistics: a prediction does not depend on the
    # other examples in the batch. Training mode normalises with the statistics of the
    # batch it is given. (A copy, so the real moving statistics are not updated.)
    net.eval()
    eval_logits = forward(net, x_test)
    batch_mode = copy.deepcopy(net).train()
    batch_logits = forward(batch_mode, x_test)
    print(f"\nevaluation with moving statistics: test acc {100 * accuracy(eval_logits, y_test):5.1f}%")
    print(
        f"batch statistics of the whole test set ({len(x_test)} images): test acc "
        f"{100 * accuracy(batch_logits, y_test):5.1f}%, max |logit difference| "
        f"{float(jnp.abs(batch_logits - eval_logits).max()):.3f}"
    )
    for size in (16, 1):
        logits = np.concatenate(
            [np.asarray(forward(batch_mode, x_test[i : i + size])) for i in range(0, len(x_test) - size + 1, size)]
        )
        acc = accuracy(logits, y_test[: len(logits)])
        print(f"batch statistics of batches of {size:2d}: test acc {100 * acc:5.1f}%")
    print("(a batch of 1 has zero variance in the fully connected layers: only moving statistics can serve it)")


if __name__ == "__main__":
    main()
