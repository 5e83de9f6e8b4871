"""Helpers shared by several test folders (import them by module; never import from a test module)."""
