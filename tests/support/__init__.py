"""Helpers shared by several test modules (import from here, never from another test module)."""
