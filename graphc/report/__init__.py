"""Complexity reports: how each differentiation method's cost grows, in tables, fits and plots.

``run`` measures a :class:`Report` (one expression, or a family of graphs over sizes); ``render``
prints and writes it; ``growth`` fits exponential or power-law growth; ``command`` is
``graphc report``. rich and matplotlib are imported only when a report is printed or written.

>>> from graphc.families import family
>>> report = run(Report(methods=["dp"], backends=["numpy"], family=family("product"), sizes=[1, 2, 3]))
>>> [row.paths for row in report.rows]
[2, 4, 8]
"""

from __future__ import annotations

from graphc.report.growth import Fit, fit
from graphc.report.measure import Row, report_methods
from graphc.report.runner import Report, run

__all__ = ["Fit", "Report", "Row", "fit", "report_methods", "run"]
