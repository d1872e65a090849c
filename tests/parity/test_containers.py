"""ModuleList, ModuleDict, ParameterList, ParameterDict and Sequential inside models,
against torch: the same state_dict keys, forward and gradients.

Each model is written once against an ``nn`` namespace and a tensor library (for
``ones``), and named after the container it exercises (the parity table's row).
"""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jmod import nn
from tests.helpers import assert_matches_torch

pytestmark = pytest.mark.torch


def module_list(nn, lib):
    class ModuleList(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(2)])
            self.layers.append(nn.Tanh())
            self.layers.extend([nn.Linear(4, 3)])
            self.layers.insert(0, nn.Linear(4, 4))

        def forward(self, x):
            for layer in self.layers[:-1]:  # iteration and slicing
                x = layer(x)
            return self.layers[-1](x) + self.layers[1](x).sum(-1, keepdims=True) * (len(self.layers) - 4)

    return ModuleList


def module_dict(nn, lib):
    class ModuleDict(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"b": nn.Linear(4, 2), "a": nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())})
            self.heads["c"] = nn.Linear(4, 2, bias=False)
            self.heads.update({"d": nn.Linear(4, 2)})

        def forward(self, x):
            # insertion order, as torch: b, a, c, d
            return sum((i + 1) * self.heads[k](x) for i, k in enumerate(self.heads.keys()))

    return ModuleDict


def parameter_list(nn, lib):
    class ParameterList(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([nn.Parameter(lib.ones(4)), nn.Parameter(lib.ones((4, 3)))])
            self.scales.append(nn.Parameter(lib.ones(3)))

        def forward(self, x):
            return (x * self.scales[0]) @ self.scales[1] + self.scales[-1]

    return ParameterList


def parameter_dict(nn, lib):
    class ParameterDict(nn.Module):
        def __init__(self):
            super().__init__()
            self.params = nn.ParameterDict({"w": nn.Parameter(lib.ones((4, 3))), "b": nn.Parameter(lib.ones(3))})
            self.params["s"] = nn.Parameter(lib.ones(1))

        def forward(self, x):
            return (x @ self.params["w"] + self.params["b"]) * self.params["s"]

    return ParameterDict


def sequential(nn, lib):
    class Sequential(nn.Module):
        def __init__(self):
            super().__init__()
            self.seq = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 5))
            self.seq.append(nn.Linear(5, 3))

        def forward(self, x):
            return self.seq[:2](x).sum(-1, keepdims=True) + self.seq(x) + self.seq[-1](self.seq[0](x))

    return Sequential


@pytest.mark.parametrize("factory", [module_list, module_dict, parameter_list, parameter_dict, sequential])
def test_container_model(factory):
    torch.manual_seed(0)
    t = factory(torch.nn, torch)()
    with torch.no_grad():  # non-trivial values for the ones-initialised parameters
        for p in t.parameters():
            p.uniform_(-1.0, 1.0)
    j = factory(nn, jnp)()
    assert list(j.state_dict()) == list(t.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    assert_matches_torch(j, t, x)
