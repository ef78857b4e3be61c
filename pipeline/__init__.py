"""汇编 (huibian): reads a reporting season's work reports and tells what each unit reported."""

__version__ = "0.1.0"

# The analysts' API (pipeline/api.py), imported on first use so `import pipeline` (and the CLI's
# start-up) does not pay for pandas.
_LAZY = {"load_run": "api", "Run": "api"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
