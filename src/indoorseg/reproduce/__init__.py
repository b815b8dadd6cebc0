"""Reproducing Kim & Choi (2019) and going beyond it, as one report: ``reproduce``.

Modules, from the top: ``study`` (the whole reproduction), ``runs`` (train and score each
model), ``floors`` (trivial predictors), ``report`` and ``plots`` (what a person reads),
``results`` (the paper's figures, ours over seeds), ``budgets`` (how much work).
"""

from indoorseg.reproduce.budgets import BUDGETS
from indoorseg.reproduce.study import reproduce

__all__ = ["BUDGETS", "reproduce"]
