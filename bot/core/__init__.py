"""The pure core: knowledge base, matching and storage. Nothing here imports discord."""
