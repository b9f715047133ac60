"""Layer 2, media: PyAV decoding of files and chunks into audio and video blocks on stream time."""
