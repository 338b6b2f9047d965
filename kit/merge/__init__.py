"""merge: options.py (the `merge:` section and the files of `kit merge`), stage.py (the work)."""
from .options import MergeOptions, MergeFiles
from .stage import parse_weights, merge_heads, load_examples, fp32_loading, merge

__all__ = ['MergeFiles', 'MergeOptions', 'fp32_loading', 'load_examples', 'merge', 'merge_heads', 'parse_weights']
