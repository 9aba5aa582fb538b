"""The copilot: threads, chat (OpenAI-compatible API, then the reasoning backend, then the offline
guided mode that answers from the org's own records with references)."""
