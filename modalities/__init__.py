"""Detection branches, one per modality, in one explicit registry.

``BRANCHES`` maps a config name to the branch class; nothing registers itself
by being imported. Look branches up with :func:`branch_class`.
"""

from __future__ import annotations

from dfstream.engine.core.errors import lookup
from dfstream.modalities.audio.branch import AudioBranch
from dfstream.modalities.visual.branch import VisualBranch

BRANCHES = {"audio": AudioBranch, "visual": VisualBranch}


def branch_class(name: str):
    """The branch class registered as ``name`` (error lists the valid names)."""
    return lookup(BRANCHES, name, "branch")
