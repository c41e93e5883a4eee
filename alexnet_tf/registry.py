"""A registry: names -> entries, filled by a decorator (the shape of big_vision's ``Registry``).
The networks (``alexnet_tf.model.MODELS``) and the augmentations (``alexnet_tf.augment.AUGMENTATIONS``)
are each one; a config names its entry, and the registry's names are the config's choices."""

from __future__ import annotations


class Registry:
    """Entries by name, each with facts about it (``info``); reads like a dict of the entries."""

    def __init__(self, kind: str):
        self.kind = kind  # what an entry is, for messages: "model", "augmentation"
        self._entries: dict = {}
        self._info: dict = {}

    def register(self, name: str, **info):
        """A decorator registering its function under ``name``, with ``info`` beside it."""

        def register(entry):
            self._entries[name] = entry
            self._info[name] = info
            return entry

        return register

    def lookup(self, name: str):
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
        return self._entries[name]

    def info(self, name: str) -> dict:
        self.lookup(name)
        return self._info[name]

    def names(self) -> list[str]:
        return list(self._entries)

    def pop(self, name: str, *default):
        self._info.pop(name, None)
        return self._entries.pop(name, *default)

    def __getitem__(self, name: str):
        return self._entries[name]

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
