"""The real-material benchmark set (``bench/make_dataset.py``): real speech and real face video from
package registries, manipulated by real speech synthesizers and mouth-region edits with exactly known
boundaries. Modules: :mod:`sources` (the material), :mod:`voices` (speech generators),
:mod:`speech` (utterances and audio splices), :mod:`faces` (clips and visual manipulations),
:mod:`build` (plans, renders and writes the set), :mod:`shortcut` (the loudness/silence-only check)."""
