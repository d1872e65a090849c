"""``python -m jmod.port``: the command line, and what the porter must not rewrite."""

from __future__ import annotations

import textwrap

import pytest

from jmod.port import port_source
from jmod.port.__main__ import main

SRC = textwrap.dedent(
    '''
    import torch
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.register_buffer("count", torch.zeros(1))

        def forward(self, x, mask):
            b = x.size(0)  # batch
            h = self.fc(x).view(b, 2, 2).transpose(1, 2).contiguous()
            h = h.masked_fill(mask, 0.0)
            h.add_(1)
            bits = h.view(torch.int32)
            with torch.no_grad():
                y = h.detach().float()
            return torch.cat([h.flatten(1), y.flatten(1)], dim=1)


    def run(model, data):
        model = Net().float()
        items = [1, 2]
        n = items.size()
        return model(data), n
    '''
)


def test_rewrites_and_keeps_what_it_must_keep():
    r = port_source(SRC)
    code = r.code
    assert "import torch" not in code and "import jax.numpy as jnp" in code and "import jmod.nn as nn" in code
    assert "b = x.shape[0]  # batch" in code  # comments kept
    assert "h = self.fc(x).reshape(b, 2, 2).swapaxes(1, 2)\n" in code
    assert "h = jnp.where(mask, 0.0, h)" in code
    assert "h = h + 1" in code  # x.add_(1) on a local name rebinds it
    assert "bits = h.view(jnp.int32)" in code  # view(dtype) reinterprets bits in jax too: not reshape
    assert "with " not in code and "    y = jax.lax.stop_gradient(h).astype(jnp.float32)" in code
    assert "jnp.concatenate([jax.lax.collapse(h, 1), jax.lax.collapse(y, 1)], axis=1)" in code
    assert "model = Net().float()" in code  # a Module's .float() is jmod's Module.float()
    assert "n = items.size()" in code  # a list is no tensor: left alone
    assert "jnp.zeros(1)" in code
    assert r.left == []


@pytest.mark.parametrize(
    "line, why",
    [
        ("self.count.add_(1)", "in-place .add_() on an attribute"),
        ("self.count[0] = 1", "assignment into an array attribute"),
        ("loss.backward()", "gradients are returned"),
        ("ok = torch.cuda.is_available()", "no jax/jmod spelling known for torch.cuda.is_available"),
        ("z = data.float()", "not known to be an array"),
        ("z = data.to(dev)", "not known to be an array"),
        ("v, i = torch.max(data, 1)", "returns (values, indices)"),
        ("p.requires_grad = False", "freeze with"),
    ],
)
def test_what_it_cannot_translate_keeps_a_comment(line, why):
    src = SRC + textwrap.indent(textwrap.dedent(f"""
    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", torch.zeros(1))

        def step(self, data, loss, dev, p):
            {line}
    """), "")
    r = port_source(src)
    assert len(r.left) == 1, r.summary()
    ln, text = r.left[0]
    assert why in text
    assert "# jmod.port: " in r.code.splitlines()[ln - 1]


def test_init_in_place_on_data_becomes_jmod_init():
    src = textwrap.dedent(
        """
        import torch.nn as nn


        class Net(nn.Module):
            def _init_weights(self, module):
                if isinstance(module, nn.Linear):
                    module.weight.data.normal_(mean=0.0, std=0.02)
                    module.bias.data.zero_()
                self.emb.weight.data.uniform_(-0.1, 0.1)
                self.head.bias.data.fill_(0)
        """
    )
    code = port_source(src).code
    assert "jmod.nn.init.normal_(module.weight, mean=0.0, std=0.02)" in code
    assert "jmod.nn.init.zeros_(module.bias)" in code
    assert "jmod.nn.init.uniform_(self.emb.weight, -0.1, 0.1)" in code
    assert "jmod.nn.init.constant_(self.head.bias, 0)" in code
    assert "import jmod\n" in code


def test_cli_writes_diffs_summarises_and_checks(tmp_path, capsys):
    src = tmp_path / "model.py"
    src.write_text(SRC)
    out = tmp_path / "model_jmod.py"
    assert main([str(src), "-o", str(out), "--check"]) == 0
    assert out.read_text() == port_source(SRC).code
    err = capsys.readouterr().err
    assert "lines rewritten, 0 left for a human" in err and "shape" in err
    assert main([str(src), "--diff"]) == 0
    diff = capsys.readouterr().out
    assert diff.startswith("---") and "-        b = x.size(0)  # batch" in diff and "+        b = x.shape[0]  # batch" in diff
    src.write_text(SRC + "\nloss.backward()\n")
    assert main([str(src), "--check"]) == 1
    captured = capsys.readouterr()
    assert "1 left for a human" in captured.err and "# jmod.port: gradients are returned" in captured.out
