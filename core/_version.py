"""The version of recs, in a module of its own: every module that records it (manifests, the CLI, the
service) imports it from here rather than from the package's ``__init__``, which re-exports the facade
(``recs.facade``), so that no module depends on the package root and the root on it (tests/test_import_cycles.py).
setup.cfg reads it from here (``attr: recs._version.__version__``).
"""

__version__ = "0.1.0"
