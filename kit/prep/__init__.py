"""prep: PDFs -> cleaned page text (pdf.py) -> chunks with title and page metadata (chunk.py)."""
