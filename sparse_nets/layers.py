"""Which layers of a model are sparse: selection by name pattern, type or predicate."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from torch import nn

#: Layer types whose ``weight`` can be masked.
SPARSIFIABLE: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)

#: A selector: a glob on the qualified module name (``"actor.*"``), a module type,
#: a predicate ``(name, module) -> bool``, or a sequence of those (any one matching selects).
Selector = str | type | Callable[[str, nn.Module], bool] | Sequence["Selector"]


def candidate_layers(model: nn.Module) -> dict[str, nn.Module]:
    """All Linear / Conv1d / Conv2d layers of ``model`` in registration order, by qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, SPARSIFIABLE)}


def _matches(selector: Selector, name: str, module: nn.Module) -> bool:
    if isinstance(selector, str):
        return fnmatch.fnmatchcase(name, selector)
    if isinstance(selector, type):
        return isinstance(module, selector)
    if callable(selector):
        return bool(selector(name, module))
    if isinstance(selector, Sequence):
        return any(_matches(s, name, module) for s in selector)
    raise TypeError(
        f"a layer selector must be a str (glob on the module name), a module type, a predicate "
        f"(name, module) -> bool, or a list of those; got {type(selector).__name__}."
    )


def select_layers(
    model: nn.Module, layers: Selector | None = None, exclude: Selector | None = None
) -> dict[str, nn.Module]:
    """The layers to make sparse: candidates matching ``layers`` (all when None) minus ``exclude``.

    Raises when a selector matches nothing, because a typo would otherwise leave a model dense.
    """
    candidates = candidate_layers(model)
    if not candidates:
        raise ValueError(
            f"model {type(model).__name__} has no layer of a sparsifiable type "
            f"({', '.join(t.__name__ for t in SPARSIFIABLE)})."
        )
    chosen = dict(candidates)
    for param, selector, keep in (("layers", layers, True), ("exclude", exclude, False)):
        if selector is None:
            continue
        hits = {n for n, m in candidates.items() if _matches(selector, n, m)}
        if not hits:
            raise ValueError(
                f"{param}={selector!r} matches no layer; the sparsifiable layers are "
                f"{list(candidates)}."
            )
        chosen = {n: m for n, m in chosen.items() if (n in hits) == keep}
    if not chosen:
        raise ValueError(f"layers={layers!r} with exclude={exclude!r} leaves no layer to sparsify.")
    return chosen


def first_layer(model: nn.Module) -> str:
    """Name of the first sparsifiable layer (a feed-forward net's input layer; ANF's choice)."""
    names = list(candidate_layers(model))
    if not names:
        raise ValueError(f"model {type(model).__name__} has no sparsifiable layer.")
    return names[0]


def last_layer(model: nn.Module) -> str:
    """Name of the last sparsifiable layer (commonly kept dense: ``exclude=last_layer(model)``)."""
    names = list(candidate_layers(model))
    if not names:
        raise ValueError(f"model {type(model).__name__} has no sparsifiable layer.")
    return names[-1]
