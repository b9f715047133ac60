"""A modality added the way the README says: this folder (a branch and its config section) and one
entry in ``dfstream.modalities.BRANCHES`` (the test makes it); nothing in the runtime changes."""
