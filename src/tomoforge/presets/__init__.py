"""Workflow presets shipped with tomoforge (JSON files in this folder)."""
