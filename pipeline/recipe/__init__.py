"""Recipes: the schema, loading (base chains, --set, paths), derivation, generated docs, the precision table."""
