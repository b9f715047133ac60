"""Fusion of branch scores, the temporal localizer, and (later) attribution."""
