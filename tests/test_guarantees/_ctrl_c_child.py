"""Child process of test_interrupts.py: training loops that the parent interrupts with SIGINT.

Run as ``python _ctrl_c_child.py OUT_DIR N_STEP_TRIALS N_COMPILE_TRIALS``. For each
trial it builds a fresh model from ``jmod.manual_seed(0)``, runs one warm-up call,
prints ``ready <trial>`` and loops until the parent's SIGINT arrives. Its
``except KeyboardInterrupt:`` handler saves a checkpoint with ``jmod.save`` the way a
user's would, and prints ``saved <trial> <calls completed before the interrupt>``
(or ``failed <trial> <error>`` if saving raised). The parent (and the reference
replay) import ``build_step_run`` / ``build_compile_run`` from here, so the replay
runs exactly the same code.
"""

import os
import sys

import jax.numpy as jnp
import numpy as np

import jmod
import jmod.nn.functional as F
from jmod import nn

D_IN, HIDDEN, D_OUT, BATCH = 4, 16, 2, 8


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, D_IN)).astype(np.float32)
    y = rng.standard_normal((BATCH, D_OUT)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


@jmod.jit
def train_step(model, opt, x, y):
    loss, grads = jmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
    opt.step(grads)
    return loss


def fresh_step_objects():
    """A fresh MLP (BatchNorm + dropout) and its Adam optimizer, from ``manual_seed(0)``."""
    jmod.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(D_IN, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(), nn.Dropout(0.25), nn.Linear(HIDDEN, D_OUT)
    )
    return model, jmod.optim.Adam(model.parameters(), lr=1e-2)


def fresh_compile_model():
    """A fresh BatchNorm model compiled with ``model.compile()``, from ``manual_seed(0)``."""
    jmod.manual_seed(0)
    model = nn.Sequential(nn.Linear(D_IN, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.Dropout(0.25), nn.BatchNorm1d(HIDDEN))
    model.compile()
    return model


def build_step_run():
    """A fresh run: ``one()`` runs one compiled training step, ``checkpoint()`` is what
    the handler saves."""
    model, opt = fresh_step_objects()
    x, y = data()

    def one():
        train_step(model, opt, x, y)

    def checkpoint():
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": jmod.get_rng_state()}

    return one, checkpoint


def build_compile_run():
    """A fresh BatchNorm model compiled with ``model.compile()``; ``one()`` runs one
    training-mode forward (updating the running statistics)."""
    model = fresh_compile_model()
    x, _ = data()

    def one():
        model(x)

    def checkpoint():
        return {"model": model.state_dict(), "rng": jmod.get_rng_state()}

    return one, checkpoint


def run_trial(kind, trial, out_dir):
    one, checkpoint = (build_step_run if kind == "step" else build_compile_run)()
    done = 0
    try:
        one()  # compile (or reuse the compiled code) before the parent starts its clock
        done = 1
        print(f"ready {trial}", flush=True)
        while True:
            one()
            done += 1
    except KeyboardInterrupt:
        try:
            jmod.save(checkpoint(), os.path.join(out_dir, f"{trial}.safetensors"))
        except Exception as e:  # what today's main does: report it, go on with the next trial
            msg = f"{type(e).__name__}: {e}".splitlines()[0]
            print(f"failed {trial} {msg}", flush=True)
        else:
            print(f"saved {trial} {done}", flush=True)


def main():
    out_dir, n_step, n_compile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for trial in range(n_step + n_compile):
        run_trial("step" if trial < n_step else "compile", trial, out_dir)
    print("finished", flush=True)


if __name__ == "__main__":
    main()
