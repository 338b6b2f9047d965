"""`kit index`: embed the corpus into a vector store and move a search alias to it with no downtime.

options.py (the ``index:`` section), uri.py (store URIs, keys from the environment), rows.py (chunks as rows),
encode.py (the model's own vectors, cached), stores/ (Milvus, Qdrant, faiss behind one interface), fill.py
(resumable, incremental), verify.py (count parity, golden check), switch.py (alias, rollback, prune),
stage.py (:func:`run`), workdir.py (what a pipeline's workdir gives), report.py (the summary)."""
from .options import IndexFiles, IndexOptions
from .stage import IndexResult, run

__all__ = ["IndexFiles", "IndexOptions", "IndexResult", "run"]
