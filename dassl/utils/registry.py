"""Name -> object registries (``TRAINER_REGISTRY``, ``DATASET_REGISTRY``, ``EVALUATOR_REGISTRY``)."""

from collections.abc import Callable
from typing import Any

from .tools import get_most_similar_str_to_a_from_b

__all__ = ["Registry"]


class Registry:
    """A registry mapping names to objects (classes or functions), keyed by ``__name__``.

    Used as a decorator::

        TRAINER_REGISTRY = Registry("TRAINER")

        @TRAINER_REGISTRY.register()
        class CoOp(TrainerX): ...

    or as a call: ``TRAINER_REGISTRY.register(CoOp)``.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any, force: bool = False) -> None:
        if name in self._obj_map and not force:
            raise KeyError(
                f'An object named "{name}" was already registered in the "{self._name}" '
                f"registry (by {self._obj_map[name].__module__}). Rename one of them, or pass "
                "force=True to replace it."
            )
        self._obj_map[name] = obj

    def register(self, obj: Any = None, force: bool = False) -> Callable | None:
        """Register ``obj`` under its ``__name__``; without ``obj``, return a decorator."""
        if obj is None:

            def wrapper(fn_or_class: Any) -> Any:
                self._do_register(fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class

            return wrapper
        self._do_register(obj.__name__, obj, force=force)
        return None

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; an unknown name raises a ``KeyError`` that
        suggests the closest registered name."""
        if name not in self._obj_map:
            suggestion = get_most_similar_str_to_a_from_b(name, list(self._obj_map))
            hint = f' Did you mean "{suggestion}"?' if suggestion is not None else ""
            raise KeyError(
                f'Object name "{name}" does not exist in the "{self._name}" registry.{hint} '
                f"Registered names: {sorted(self._obj_map)}."
            )
        return self._obj_map[name]

    def registered_names(self) -> list[str]:
        """Names in registration order."""
        return list(self._obj_map.keys())

    def __contains__(self, name: str) -> bool:
        return name in self._obj_map
