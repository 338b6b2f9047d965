"""adapter: options.py (the `adapter:` section and the files of `kit adapter`), stage.py (the work)."""
from .options import AdapterOptions, AdapterFiles
from .stage import AdapterResult, heldout_split, load_rows, Trainer, fit, provider_entries, train_adapter

__all__ = ['AdapterFiles', 'AdapterOptions', 'AdapterResult', 'Trainer', 'fit', 'heldout_split', 'load_rows', 'provider_entries', 'train_adapter']
