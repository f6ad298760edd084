"""The run report: one self-contained HTML page per project."""
