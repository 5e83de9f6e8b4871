"""Assets by domain: one module each."""
