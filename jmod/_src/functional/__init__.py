"""Implementations behind ``jmod.nn.functional``, one file per layer family."""
