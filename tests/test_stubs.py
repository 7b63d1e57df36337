"""The type stubs (_core.pyi) describe the compiled module exactly: same functions, same
argument names, in the same order."""
import ast
import re
from pathlib import Path

import pytest

import fastconv
from fastconv import _core

STUB = Path(fastconv.__file__).with_name("_core.pyi")


def _stub_functions():
    tree = ast.parse(STUB.read_text())
    funcs = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.ClassDef) and node.name == "_testing":
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    funcs["_testing." + sub.name] = [a.arg for a in sub.args.args]
    return funcs


def _compiled(name):
    obj = _core
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _signatures(fn, name):
    """Argument-name lists of every overload, from pybind11's docstring."""
    short = name.split(".")[-1]
    sigs = re.findall(rf"^(?:\d+\. )?{short}\((.*?)\) ->", fn.__doc__ or "", re.M)
    return [[a.split(":")[0].strip() for a in s.split(",") if a.strip()] for s in sigs]


STUBS = _stub_functions()


def test_stub_file_is_shipped():
    assert STUB.is_file()
    assert (STUB.parent / "py.typed").is_file()


@pytest.mark.parametrize("name", sorted(STUBS))
def test_stub_matches_compiled(name):
    fn = _compiled(name)
    assert callable(fn), name
    sigs = _signatures(fn, name)
    assert sigs, f"{name}: no signature in the compiled docstring"
    for args in sigs:
        assert args == STUBS[name], f"{name}: compiled {args} != stub {STUBS[name]}"


def test_every_compiled_function_has_a_stub():
    public = {n for n in dir(_core) if not n.startswith("__") and callable(getattr(_core, n))}
    public.discard("_testing")
    testing = {"_testing." + n for n in dir(_core._testing)
               if not n.startswith("__") and callable(getattr(_core._testing, n))}
    missing = sorted((public | testing) - set(STUBS))
    assert not missing, f"functions without a stub: {missing}"
