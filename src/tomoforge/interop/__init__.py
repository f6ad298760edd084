"""Hand-offs to and from other tools: export a project to IMOD / RELION 5 form, import their results.

The file formats live in ``io/``. ``collect`` gathers what a project holds; ``export_imod`` and
``export_relion`` convert the conventions; ``views`` and ``matching`` fill and match tilt-series views from
external files (used by the import steps in ``steps/import_external.py``, so they import nothing from
``project/``); ``import_external`` turns Scipion workflow templates into tomoforge workflow files.
"""
