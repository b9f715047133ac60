"""dfstream's engine (``dfstream.engine``): the layers every entry point stands on.

``core`` (layer 1: types, errors, config machinery, artifacts; no torch, no av),
``media`` (layer 2: PyAV decoding into blocks on stream time) and ``runtime``
(layer 4: detector, stream processor and state, scheduler, checkpoints). The
branches and the fusion (layer 3) sit between media and runtime, in
``dfstream.modalities`` and ``dfstream.fusion``. See the README's "Architecture".
"""
