"""The models dfstream ships, installed with the package as ``dfstream.models``.

``default/`` is the shipped detector (checkpoint, attribution index, model card),
the model every command uses unless ``--model`` names another
(:mod:`dfstream.engine.core.model_store`).
"""
