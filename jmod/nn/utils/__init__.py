"""``jmod.nn.utils``: torch.nn.utils' helpers on JAX arrays."""

from jmod.nn.utils import rnn as rnn  # noqa: F401  (layers-c: packed sequences)
