"""Hard-negative mining: options.py (the ``mine:`` section), corpus.py (unique texts, neighbours, 5-grams),
filters.py (one row's candidates: filters and seeded sampling), stats.py, stage.py (the named steps)."""
from .corpus import containment, grams
from .filters import FILTERS
from .options import MineFiles, MineOptions
from .stage import MineResult, mine, parse_range
from .stats import format_stats, percentiles

__all__ = ["FILTERS", "MineFiles", "MineOptions", "MineResult", "containment", "format_stats", "grams", "mine",
           "parse_range", "percentiles"]
