"""The rewrite table behind ``python -m jmod.port`` (docs/porting.md, "Tensor methods and functions").

Each entry says how a torch spelling is written for jax arrays. The transformer in
``_transform.py`` applies them; anything not listed here is left as it is, with a
``# jmod.port: <why>`` comment when it names torch.
"""

from __future__ import annotations

# torch dtype attribute -> jnp spelling. int64/float64 follow jax's default (32-bit) mode,
# as docs/porting.md's table says (jnp.int64 asks for 64-bit arrays jax does not have
# unless jax_enable_x64 is set, and warns).
DTYPES = {
    "float32": "jnp.float32",
    "float": "jnp.float32",
    "float16": "jnp.float16",
    "half": "jnp.float16",
    "bfloat16": "jnp.bfloat16",
    "float64": "jnp.float64",
    "double": "jnp.float64",
    "int64": "jnp.int32",
    "long": "jnp.int32",
    "int32": "jnp.int32",
    "int": "jnp.int32",
    "int16": "jnp.int16",
    "short": "jnp.int16",
    "int8": "jnp.int8",
    "uint8": "jnp.uint8",
    "bool": "jnp.bool_",
    "complex64": "jnp.complex64",
}

# tensor.float() and friends -> astype(...)
CAST_METHODS = {
    "float": "jnp.float32",
    "half": "jnp.float16",
    "double": "jnp.float64",
    "bfloat16": "jnp.bfloat16",
    "long": "jnp.int32",
    "int": "jnp.int32",
    "bool": "jnp.bool_",
}

# torch.X(x, ...) elementwise functions whose jnp spelling takes the same arguments.
SAME_ARGS = {
    "exp": "jnp.exp",
    "log": "jnp.log",
    "log1p": "jnp.log1p",
    "expm1": "jnp.expm1",
    "sqrt": "jnp.sqrt",
    "rsqrt": "jax.lax.rsqrt",
    "sin": "jnp.sin",
    "cos": "jnp.cos",
    "tanh": "jnp.tanh",
    "abs": "jnp.abs",
    "floor": "jnp.floor",
    "ceil": "jnp.ceil",
    "round": "jnp.round",
    "sign": "jnp.sign",
    "sigmoid": "jax.nn.sigmoid",
    "relu": "jax.nn.relu",
    "erf": "jax.scipy.special.erf",
    "pow": "jnp.power",
    "maximum": "jnp.maximum",
    "minimum": "jnp.minimum",
    "matmul": "jnp.matmul",
    "mm": "jnp.matmul",
    "bmm": "jnp.matmul",
    "einsum": "jnp.einsum",
    "where": "jnp.where",
    "outer": "jnp.outer",
    "isnan": "jnp.isnan",
    "isinf": "jnp.isinf",
    "isfinite": "jnp.isfinite",
    "logical_not": "jnp.logical_not",
    "zeros_like": "jnp.zeros_like",
    "ones_like": "jnp.ones_like",
    "full_like": "jnp.full_like",
    "empty_like": "jnp.zeros_like",
    "clamp": "jnp.clip",
    "clip": "jnp.clip",
    "tril": "jnp.tril",
    "triu": "jnp.triu",
    "arange": "jnp.arange",
    "linspace": "jnp.linspace",
    "full": "jnp.full",
    "tensor": "jnp.asarray",
    "as_tensor": "jnp.asarray",
    "from_numpy": "jnp.asarray",
    "cat": "jnp.concatenate",
    "concat": "jnp.concatenate",
    "concatenate": "jnp.concatenate",
    "stack": "jnp.stack",
    "sum": "jnp.sum",
    "mean": "jnp.mean",
    "prod": "jnp.prod",
    "amax": "jnp.max",
    "amin": "jnp.min",
    "argmax": "jnp.argmax",
    "argmin": "jnp.argmin",
    "logsumexp": "jax.nn.logsumexp",
    "softmax": "jax.nn.softmax",
    "log_softmax": "jax.nn.log_softmax",
    "cumsum": "jnp.cumsum",
    "squeeze": "jnp.squeeze",
    "unsqueeze": "jnp.expand_dims",
    "transpose": "jnp.swapaxes",
    "permute": "jnp.transpose",
    "var": "jnp.var",
    "std": "jnp.std",
}
# keyword renames every torch -> jnp function above shares
KWARG_RENAMES = {"dim": "axis", "keepdim": "keepdims", "diagonal": "k", "min": "min", "max": "max"}
# keywords that are device plumbing or autograd flags: dropped
DROPPED_KWARGS = {"device", "requires_grad", "pin_memory", "layout", "memory_format", "non_blocking"}
# torch.zeros(2, 3) -> jnp.zeros((2, 3)): functions whose sizes torch takes as varargs
SIZE_VARARGS = {"zeros": "jnp.zeros", "ones": "jnp.ones", "empty": "jnp.zeros"}
# torch.var / torch.std: torch's default is the unbiased estimate
UNBIASED_DEFAULT = {"var", "std"}

# torch.X -> jmod.X: the global generator and serialization (same signatures)
TO_JMOD = {
    "manual_seed",
    "seed",
    "initial_seed",
    "randn",
    "rand",
    "randint",
    "randn_like",
    "rand_like",
    "randperm",
    "bernoulli",
    "multinomial",
    "normal",
    "compile",
}

# tensor.X() elementwise methods jax arrays lack -> function(x)
METHOD_TO_FUNCTION = {
    "exp": "jnp.exp",
    "log": "jnp.log",
    "log1p": "jnp.log1p",
    "sqrt": "jnp.sqrt",
    "rsqrt": "jax.lax.rsqrt",
    "sin": "jnp.sin",
    "cos": "jnp.cos",
    "tanh": "jnp.tanh",
    "abs": "jnp.abs",
    "floor": "jnp.floor",
    "ceil": "jnp.ceil",
    "sign": "jnp.sign",
    "sigmoid": "jax.nn.sigmoid",
    "relu": "jax.nn.relu",
    "exp_": None,
    "neg": "jnp.negative",
    "isnan": "jnp.isnan",
    "logical_not": "jnp.logical_not",
    "softmax": "jax.nn.softmax",
    "log_softmax": "jax.nn.log_softmax",
    "clamp": "jnp.clip",
    "unsqueeze": "jnp.expand_dims",
    "expand_dims": None,
}

# tensor methods jax arrays also have, with torch's keyword names to rename
REDUCTIONS = {"sum", "mean", "prod", "any", "all", "argmax", "argmin", "cumsum", "std", "var", "max", "min", "norm"}

# methods that exist on torch.nn.Module too: rewritten only when the receiver is known to be a tensor
MODULE_ALSO = {"float", "half", "double", "bfloat16", "to", "cuda", "cpu", "type", "zero_", "apply", "requires_grad_"}

# x.normal_(...) on a parameter's .data -> jmod.nn.init.normal_(x, ...)
INIT_IN_PLACE = {"normal_": "normal_", "uniform_": "uniform_", "fill_": "constant_", "zero_": "zeros_"}

# name = x.op_(...) on a local name -> name = out-of-place form
IN_PLACE_BINARY = {"add_": "+", "sub_": "-", "mul_": "*", "div_": "/"}

# torch names that are device or backend plumbing: kept with a note
PLUMBING = {"device", "cuda", "backends", "accelerator", "distributed", "autograd", "jit", "hub", "mps", "amp"}
