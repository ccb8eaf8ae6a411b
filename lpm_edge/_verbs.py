"""Keep `lpm_edge.train(...)`, `lpm_edge.export(...)`, `lpm_edge.bench(...)` callable.

Importing a subpackage binds it as an attribute of its parent, hiding the function of the same
name that `lpm_edge.__getattr__` would return; so each verb's package is made callable as its verb.
"""

from __future__ import annotations

import sys
import types
from typing import Any, Callable


def callable_package(name: str, verb: Callable[..., Any]) -> None:
    class Verb(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return verb(*args, **kwargs)

    Verb.__call__.__doc__ = verb.__doc__
    sys.modules[name].__class__ = Verb
