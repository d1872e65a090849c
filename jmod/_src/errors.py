"""jmod's own error classes: one per failure, each saying what went wrong and the fix.

Each class's docstring is its entry in ``docs/errors.md``; messages end with a link
to it. Errors that torch also raises keep torch's type and wording instead (see
``Module`` and ``load_state_dict``).
"""

from __future__ import annotations

_DOCS = "https://jmod.readthedocs.io/en/latest/errors/"


class JmodError(Exception):
    """Base class of jmod-specific errors."""

    anchor = ""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}\n(see {_DOCS}#{self.anchor})")


class UnthreadedRandomStateError(JmodError, RuntimeError):
    """A random layer or ``jmod.randn`` ran inside a plain ``jax.jit``/``jax.lax`` trace.

    jmod's global generator is state that ``jmod.jit`` threads through compiled code.
    Inside a trace jmod does not control (your own ``jax.jit``, ``jax.lax.scan``
    body, ...) the new key would be a traced value with nowhere to go: the same mask
    would be baked into every call, or a tracer would leak. Fixes:

    1. compile with ``jmod.jit`` (or ``model.compile()``) instead of ``jax.jit``;
    2. give the trace its own key: ``with jmod.random.fork_rng(key): model(x)`` or
       ``jmod.func.functional_call(model, state, x, key=key)``;
    3. for evaluation, call ``model.eval()`` so dropout does not draw.
    """

    anchor = "unthreadedrandomstateerror"

    def __init__(self) -> None:
        super().__init__(
            "jmod's random generator was used inside a jax transformation that jmod does not "
            "thread its state through (a plain jax.jit, or a jax.lax.scan/while body). "
            "Use jmod.jit / model.compile() instead of jax.jit, or pass a key explicitly: "
            "`with jmod.random.fork_rng(key): ...` or jmod.func.functional_call(..., key=key)."
        )


class TracerEscapeError(JmodError, RuntimeError):
    """A traced array was stored somewhere jmod cannot carry out of a compiled call.

    ``jmod.jit`` carries parameters, buffers and plain array attributes of the
    modules (and optimizers) it is given: what ``forward`` assigns to them is written
    back after the call. A traced array appended to a list attribute, stored in a dict
    attribute or in a global would outlive the trace as a dead tracer, so jmod stops.
    Fixes: assign the array to an attribute (``self.last = x``) or a buffer, return it
    from the function, use ``jmod.capture`` for intermediate activations, or register
    the hook with ``host=True`` to see concrete values.
    """

    anchor = "tracerescapeerror"


class HookTracerError(JmodError, TypeError):
    """A hook tried to read a concrete value (``float()``, ``.item()``, ``np.asarray``)
    from a traced array while compiled code was being traced.

    Under ``jmod.jit``/``jax.jit``, hooks run once at trace time and see tracers. A hook
    that only observes values can run on the host with real numbers instead: register
    it with ``host=True`` (``m.register_forward_hook(hook, host=True)``), which routes it
    through ``jax.debug.callback`` in order with the other host hooks.
    """

    anchor = "hooktracererror"


class SharedStorageError(JmodError, ValueError):
    """A new ``nn.Parameter`` made from another parameter's array was registered elsewhere.

    In torch, ``nn.Parameter(t)`` shares ``t``'s storage, so
    ``self.lm_head.weight = nn.Parameter(self.wte.weight)`` (or
    ``nn.Embedding.from_pretrained(other.weight)``) gives two parameters whose values
    stay equal because every in-place update writes the same memory. jmod parameters
    hold immutable arrays and cannot share storage; a silent copy would let the two
    drift apart after the first optimizer step. Say which one you mean:

    1. one parameter used in both places (tied weights, what nanoGPT writes as
       ``self.transformer.wte.weight = self.lm_head.weight``): assign the array itself,
       ``self.lm_head.weight = self.wte.weight``;
    2. an independent parameter starting from the same values: copy it,
       ``nn.Parameter(jnp.array(self.wte.weight))``.

    Re-wrapping a parameter in its own place (``lin.bias = nn.Parameter(lin.bias,
    requires_grad=False)``) is allowed: the old parameter is replaced, as in torch.
    """

    anchor = "sharedstorageerror"


class RetraceWarning(UserWarning):
    """A compiled function keeps retracing because some non-array value changes every call."""
