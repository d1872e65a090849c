"""``python -m jmod.port``: port a torch model file to jmod in one command.

A codemod on libcst (it keeps comments and formatting) that applies the table of
docs/porting.md: imports (``torch.nn`` -> ``jmod.nn``, ``torch.optim`` -> ``jmod.optim``),
tensor methods jax arrays spell differently (``x.view`` -> ``x.reshape``, ``x.size(0)`` ->
``x.shape[0]``, ``x.transpose(1, 2)`` -> ``x.swapaxes(1, 2)``, ...), torch functions and
dtypes (``torch.cat(xs, dim=1)`` -> ``jnp.concatenate(xs, axis=1)``), the global generator
(``torch.randn`` -> ``jmod.randn``), device plumbing and ``no_grad``.

It is conservative: a rewrite applies only where the value is known to be a tensor (or,
for methods only torch tensors have, not known to be something else), and what it cannot
translate keeps a ``# jmod.port: <why>`` comment on its line.

Needs the ``port`` extra (``pip install jmod[port]``, which installs libcst).
"""

from __future__ import annotations

import dataclasses

__all__ = ["PortResult", "port_source"]


@dataclasses.dataclass
class PortResult:
    """What :func:`port_source` made of a file.

    Attributes:
        code (str): the ported source.
        rewritten (dict): lines rewritten, per kind of rewrite (a line can count for several kinds).
        lines_rewritten (int): lines of the source the port changed (each counted once).
        left (list): ``(line, why)`` for each line of ``code`` left for a human.
    """

    code: str
    rewritten: dict
    lines_rewritten: int
    left: list

    def summary(self) -> str:
        """The report ``python -m jmod.port`` prints.

        Returns:
            str: one line per kind of rewrite, then the lines left for a human.
        """
        lines = [f"jmod.port: {self.lines_rewritten} lines rewritten, {len(self.left)} left for a human"]
        for kind, n in self.rewritten.items():
            lines.append(f"  {kind:<24} {n}")
        for ln, why in self.left:
            lines.append(f"  line {ln}: {why}")
        return "\n".join(lines)


def port_source(source: str) -> PortResult:
    """Port torch model source code to jmod.

    Args:
        source (str): the text of a Python file written for torch.

    Returns:
        PortResult: the new text, what was rewritten and what is left.

    Examples:
        >>> r = port_source("import torch\\n\\ndef f(x):\\n    return x.view(x.size(0), -1)\\n")
        >>> print(r.code)
        <BLANKLINE>
        def f(x):
            return x.reshape(x.shape[0], -1)
        <BLANKLINE>
    """
    import difflib

    from jmod.port._transform import transform

    code, per_kind, _, left = transform(source)
    old, new = source.splitlines(), code.splitlines()
    changed = 0
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            changed += i2 - i1
    return PortResult(code=code, rewritten=per_kind, lines_rewritten=changed, left=left)
