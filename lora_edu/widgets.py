"""Interactive controls for the notebooks (ipywidgets), each built by a function that returns it.

A builder returns the widget (a ``VBox`` holding the controls and an output area); the controls
are reachable as attributes, so a test can move a slider and read what the widget computed without
a browser. Only this module (and ``plot.py``) imports ipywidgets or matplotlib.
"""

from __future__ import annotations
