"""``jmod.nn.parallel``: torch's ``nn.DataParallel`` wrapper, on JAX devices.

For new code, ``jmod.parallel`` (meshes, ``data_parallel``, FSDP, tensor parallel) is
the JAX way; this wrapper exists so that torch scripts that write
``model = nn.DataParallel(model)`` run unchanged and save ``module.``-prefixed
checkpoints as torch does.
"""

from jmod.nn.parallel.data_parallel import DataParallel as DataParallel

__all__ = ["DataParallel"]
