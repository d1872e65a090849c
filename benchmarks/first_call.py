"""Where the first call of a training step goes: jmod against pure JAX (issue 18, item 3).

For each workload of ``benchmarks/run.py`` it runs the first step of the pure-JAX and
of the jmod implementation (after ``jax.clear_caches()``, alternating order, median of
rounds) and splits the time with JAX's compile logging (``jax_log_compiles``) into
tracing, lowering to MLIR and XLA compilation, per jitted function (jmod traces the
user function as ``body`` and re-traces the recorded jaxpr as ``replay``). Also prints
the number of equations of the top-level jaxpr and of the compiled HLO module::

    python benchmarks/first_call.py [--rounds 3] [--workload lenet ...]
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

_PAT = re.compile(r"Finished (tracing|jaxpr to MLIR module conversion|XLA compilation)(?: of)? (\S+).* in ([0-9.e-]+) sec")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rows: list[tuple[str, str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = _PAT.search(record.getMessage())
        if m:
            phase = {"tracing": "trace", "jaxpr to MLIR module conversion": "lower", "XLA compilation": "compile"}
            self.rows.append((phase[m.group(1)], m.group(2), float(m.group(3))))


def first_call(make, workload: str) -> tuple[float, dict[str, float]]:
    jax.clear_caches()
    run = make(workload)  # model/parameter construction is not timed
    handler = _Collect()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    jax.config.update("jax_log_compiles", True)
    try:
        t0 = time.perf_counter()
        jax.block_until_ready(run())
        total = time.perf_counter() - t0
    finally:
        jax.config.update("jax_log_compiles", False)
        logger.removeHandler(handler)
    phases: dict[str, float] = {}
    for phase, name, sec in handler.rows:
        # Top-level functions only: nested jits (jmod's functional helpers) are traced
        # and lowered inside their caller and would be counted twice.
        if phase == "trace" and name not in ("step", "body", "replay"):
            continue
        key = "replay" if (phase == "trace" and name == "replay") else phase
        phases[key] = phases.get(key, 0.0) + sec
    phases["n_compiles"] = sum(1 for p, _, _ in handler.rows if p == "compile")
    return total, phases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workload", nargs="+", default=["mlp-tiny", "lenet", "mlp-bn"])
    args = ap.parse_args(argv)
    impls = {"pure JAX": bench.pure_jax, "jmod": bench.jmod_impl}
    res: dict[tuple[str, str], list] = {}
    for r in range(args.rounds):
        order = list(impls) if r % 2 == 0 else list(impls)[::-1]
        for w in args.workload:
            for name in order:
                res.setdefault((w, name), []).append(first_call(impls[name], w))
    print(f"first call, median of {args.rounds} (seconds): total = trace (+ jmod's replay) + lower + compile + run + Python")
    print(
        f"{'workload':10s} {'impl':9s} {'total':>7s} {'trace':>7s} {'replay':>7s} {'lower':>7s} {'compile':>8s} "
        f"{'#compiles':>10s}"
    )
    for (w, name), runs in res.items():
        med = lambda key: statistics.median(p.get(key, 0.0) for _, p in runs)  # noqa: E731
        total = statistics.median(t for t, _ in runs)
        print(
            f"{w:10s} {name:9s} {total:7.2f} {med('trace'):7.2f} {med('replay'):7.2f} {med('lower'):7.2f} "
            f"{med('compile'):8.2f} "
            f"{med('n_compiles'):10.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
