"""queries: questions per chunk, from an LLM (llm.py) or offline generators (offline.py).

stage.py is the stage (corpus.jsonl -> pairs.jsonl); parse.py reads and filters LLM answers;
cache.py keeps every successful LLM answer on disk.
"""
from .stage import QueryResult, gen_queries
from .options import GENERATORS, QueryFiles, QueryOptions

__all__ = ["GENERATORS", "QueryFiles", "QueryOptions", "QueryResult", "gen_queries"]
