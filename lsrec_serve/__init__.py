"""LSRec serving side: the CLI, offline recommendations (and, later, the vLLM plugin and client)."""
