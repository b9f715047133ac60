"""dfstream: multimodal streaming deepfake detection.

One import name for the whole project. The layer folders of the source tree
(``engine/``, ``modalities/``, ``fusion/``, ``streams/``, ``reports/``,
``models/``) are mapped into it by ``pyproject.toml`` (setuptools
``package-dir``), so an installed dfstream adds ``dfstream`` and nothing else
to the import namespace.
"""

__version__ = "0.1.0"
