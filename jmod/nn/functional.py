"""``jmod.nn.functional``: torch.nn.functional's functions on ``jax.Array``.

Pure functions (no state); the layers in ``jmod.nn`` call them. Random ones
(``dropout``...) draw from jmod's generator. Implementations live in
``jmod/_src/functional/``, one file per family.
"""

from jmod._src.functional.linear import bilinear as bilinear, linear as linear
