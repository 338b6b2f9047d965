"""queries: questions per chunk, from an LLM (llm.py) or offline generators (offline.py)."""
