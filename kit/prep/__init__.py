"""prep: PDFs -> cleaned page text (pdf.py) -> chunks with title and page metadata (chunk.py)."""
from .stage import PrepOptions, PrepResult, prep

__all__ = ["PrepOptions", "PrepResult", "prep"]
