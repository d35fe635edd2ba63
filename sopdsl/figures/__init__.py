"""Figures of a run and the report people look at.

`collect.py` counts a dry run's figures from what the engine is fed and what it decides (no
state is added to the engine); `model.py` holds them; `report.py` puts them together with the
group calendar into one report (JSON), and `html.py` with `svg.py` render it as one
self-contained HTML file.
"""

from sopdsl.figures.collect import Collector
from sopdsl.figures.model import FAMILIES, Figures, FlowFigures, GroupDay

__all__ = ["FAMILIES", "Collector", "Figures", "FlowFigures", "GroupDay"]
