"""dfstream's core: types, config, decoding, inference, checkpoints.

Importing this package imports no torch; the modules that need it
(``engine.detector``, ``engine.checkpoint``, ``engine.training``) do so themselves.
"""

__version__ = "0.1.0"
