"""Text to syntax trees: reading files with their includes, parsing, formatting."""
