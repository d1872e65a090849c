"""How many lines a port from torch to jmod changed, and which kinds of change.

Each model in this directory is written twice, ``<name>_torch.py`` and ``<name>_jmod.py``;
the line diff between the two is the port. Import lines and blank lines are left out
(every port changes its imports). Run ``python -m tests.models.port_stats`` for the
report; ``tests/test_porting.py`` checks the numbers quoted in ``docs/porting.md``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
PAIRS = {"gpt": ("gpt_torch.py", "gpt_jmod.py"), "resnet": ("resnet_torch.py", "resnet_jmod.py")}

_IMPORT = re.compile(r"^\s*(import \S|from \S+ import )")

NAMESPACE = "namespace: torch.X -> jmod.X, the call unchanged"
# (kind, pattern on the torch line). A changed line counts under every kind it shows.
KINDS: list[tuple[str, re.Pattern]] = [
    (
        "tensor method -> jax.numpy (view, transpose, size, split, numel, dim, contiguous, flatten)",
        re.compile(r"\.(view|transpose|size|split|numel|dim|contiguous)\(|torch\.flatten"),
    ),
    (
        "torch function -> jnp / jax.lax (tril, ones, arange, cat, topk)",
        re.compile(r"torch\.(tril|ones|zeros|arange|cat|stack|topk)\("),
    ),
    ("masking -> jnp.where (masked_fill, in-place index assignment)", re.compile(r"masked_fill|^\s*\w+\[.*\]\s*=[^=]")),
    ("torch.long -> jnp.int32", re.compile(r"torch\.long")),
    ("device plumbing dropped (.device of a traced array)", re.compile(r"\.device\b|device=device")),
    ("requires_grad -> jmod.nn.parameter.requires_grad(p)", re.compile(r"\.requires_grad\b")),
    ("autograd context dropped (@torch.no_grad)", re.compile(r"torch\.no_grad|torch\.inference_mode")),
]


@dataclass
class PortStats:
    name: str
    torch_lines: int  # non-blank, non-import lines of the torch file
    changed: int = 0  # torch lines replaced by other lines
    removed: int = 0  # torch lines with no counterpart
    added: int = 0  # jmod lines with no counterpart
    kinds: dict[str, int] = field(default_factory=dict)
    unclassified: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def touched(self) -> int:
        """torch lines the port had to touch (changed or removed)."""
        return self.changed + self.removed


def _code_lines(path: Path) -> list[str]:
    return [line.rstrip() for line in path.read_text().splitlines() if line.strip() and not _IMPORT.match(line)]


def _classify(torch_line: str, jmod_line: str) -> list[str]:
    if jmod_line and torch_line.replace("torch.", "jmod.") == jmod_line:
        return [NAMESPACE]
    return [kind for kind, pattern in KINDS if pattern.search(torch_line)]


def port_stats(name: str) -> PortStats:
    t_file, j_file = PAIRS[name]
    old, new = _code_lines(HERE / t_file), _code_lines(HERE / j_file)
    stats = PortStats(name, len(old))
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        a, b = old[i1:i2], new[j1:j2]
        for k, line in enumerate(a):
            partner = b[k] if k < len(b) else ""
            if k < len(b):
                stats.changed += 1
            else:
                stats.removed += 1
            stats.pairs.append((line, partner))
            kinds = _classify(line, partner)
            if not kinds:
                stats.unclassified.append(line)
            for kind in kinds:
                stats.kinds[kind] = stats.kinds.get(kind, 0) + 1
        for line in b[len(a) :]:
            stats.added += 1
            stats.pairs.append(("", line))
            stats.unclassified.append("+ " + line)
    return stats


def report(name: str) -> str:
    s = port_stats(name)
    t_file, j_file = PAIRS[name]
    lines = [
        f"{name}: {t_file} -> {j_file}: {s.touched} of {s.torch_lines} code lines touched "
        f"({s.changed} changed, {s.removed} removed, {s.added} added; imports and blank lines not counted)"
    ]
    lines.append("  kinds of change (a line can show several):")
    for kind, n in sorted(s.kinds.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:3d}  {kind}")
    for line in s.unclassified:
        lines.append(f"  unclassified: {line.strip()}")
    return "\n".join(lines)


if __name__ == "__main__":
    for name in PAIRS:
        print(report(name))
