"""``python -m dfstream``: the ``dfstream`` command."""

import sys

from dfstream.app.cli import main

sys.exit(main())
