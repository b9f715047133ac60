"""Layer 6, the application: the ``dfstream`` command (one module per command, :mod:`dfstream.app.cli`)
and the workflows it runs: training, evaluation, the attribution index, toy data."""
