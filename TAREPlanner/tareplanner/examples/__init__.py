"""Built-in example cases (package data)."""
