"""Model sources: where a model comes from, and how its identity is digested without loading it."""
