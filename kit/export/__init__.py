"""export: options.py (the `export:` section and the files of `kit export`), stage.py (the work)."""
from .options import ExportOptions, ExportFiles
from .stage import ExportResult, negative_columns, st_rows, export_training, export_eval, export, USAGE

__all__ = ['ExportFiles', 'ExportOptions', 'ExportResult', 'USAGE', 'export', 'export_eval', 'export_training', 'negative_columns', 'st_rows']
