"""The guided workflow as a web page: ``tareplanner serve`` (extra ``web``).

:mod:`.files` (the data-folder guard) and :mod:`.session` (the page's model on the guided
workflow) need no web toolkit; :mod:`.app` needs trame and trame-slicer
(``pip install -e ".[web]"``). One user session per process.
"""

#: the packages ``tareplanner serve`` imports (module name -> distribution to install)
REQUIRED = {"trame": "trame", "trame_vuetify": "trame-vuetify", "trame_slicer": "trame-slicer",
            "trame_rca": "trame-rca", "slicer": "slicer-core", "aiohttp": "aiohttp",
            "undo_stack": "py-undo-stack"}


def missing_packages() -> list[str]:
    """Distributions of :data:`REQUIRED` that cannot be imported here."""
    import importlib.util
    return [dist for module, dist in REQUIRED.items()
            if importlib.util.find_spec(module) is None]
