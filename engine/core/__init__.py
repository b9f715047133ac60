"""Layer 1, the core: the data that flows (types), errors, config machinery, artifacts. No torch, no av."""
