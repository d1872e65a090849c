"""LeNet, written exactly as in PyTorch's "Training a classifier" tutorial.

    python examples/lenet.py [--quick]

Defines the tutorial's ``Net`` with ``jmod.nn`` and shows what a PyTorch user checks
first: ``print(model)`` (torch's format), a forward pass on a (1, 3, 32, 32) input
giving (1, 10) logits, the output shape of every layer (with forward hooks), the
``state_dict`` keys and the parameter count. If PyTorch is installed it also builds
the same network in torch, loads torch's weights into the jmod model and compares
the printed model and the outputs.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

import jmod
import jmod.nn.functional as F
from jmod import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)  # torch: torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def torch_net():
    """The same network in PyTorch (the tutorial's code, verbatim apart from the names)."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 6, 5)
            self.pool = tnn.MaxPool2d(2, 2)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1 = tnn.Linear(16 * 5 * 5, 120)
            self.fc2 = tnn.Linear(120, 84)
            self.fc3 = tnn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(TF.relu(self.conv1(x)))
            x = self.pool(TF.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = TF.relu(self.fc1(x))
            x = TF.relu(self.fc2(x))
            return self.fc3(x)

    TorchNet.__name__ = "Net"  # so that the two reprs can be compared line for line
    return TorchNet()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="(this example is already quick)")
    parser.parse_args(argv)

    jmod.manual_seed(0)
    model = Net()
    print(model)

    x = jmod.randn(1, 3, 32, 32)
    out = model(x)
    print(f"\ninput {tuple(x.shape)} -> output {tuple(out.shape)}")

    # Output shape of every layer, with the forward hooks a torch user would write
    # (self.pool is called twice, so it reports twice).
    print("\nlayer outputs:")
    handles = [
        module.register_forward_hook(lambda m, args, output, name=name: print(f"  {name:6s} {tuple(output.shape)}"))
        for name, module in model.named_children()
    ]
    model(x)
    for h in handles:
        h.remove()

    print("\nstate_dict:")
    for name, value in model.state_dict().items():
        print(f"  {name:13s} {tuple(value.shape)}")
    n_params = sum(p.size for p in model.parameters())  # torch: p.numel()
    print(f"parameters: {n_params:,}")

    try:
        import torch
    except ImportError:
        print("\nPyTorch is not installed: skipping the comparison with torch's LeNet.")
        return
    torch.manual_seed(0)
    reference = torch_net()
    print("\nrepr identical to torch's:", repr(model) == repr(reference))
    model.load_state_dict(reference.state_dict())  # torch tensors load directly
    with torch.no_grad():
        expected = reference(torch.tensor(np.asarray(x))).numpy()
    diff = float(jnp.abs(model(x) - expected).max())
    print(f"with torch's weights, max |jmod - torch| over the 10 logits: {diff:.1e}")


if __name__ == "__main__":
    main()
