"""The audio branch: a self-supervised speech encoder and a temporal back-end."""
