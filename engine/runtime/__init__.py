"""Layer 4, the runtime: the detector over the branches, the stream processor and its state, the
scheduler, checkpoints, devices and precision. It calls branches through their protocol only
(:class:`dfstream.modalities.base.Branch`), never by modality name."""
