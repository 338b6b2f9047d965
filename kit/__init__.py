"""kit: fine-tune Chinese embedding models on your own PDFs, and choose a model from a measured report."""
__version__ = "0.1.0"
