"""prep: documents -> corpus.jsonl. pdf.py (+ layout.py tables/columns, ocr.py scans, clean.py headers and
paragraphs) and inputs.py (txt, md, docx, jsonl) read; structure.py and chunk.py cut; fidelity.py checks that
nothing was lost; stage.py runs it all over files in parallel; report.py tells."""
from .report import PrepResult
from .options import PrepFiles, PrepOptions
from .stage import prep

__all__ = ["PrepFiles", "PrepOptions", "PrepResult", "prep"]
