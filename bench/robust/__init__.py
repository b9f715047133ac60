"""Parts of the re-encoding robustness benchmark (``bench/robustness.py`` is its command line and runner)."""
