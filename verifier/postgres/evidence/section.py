"""A kind's section of the manifest: a top-level key of the manifest's JSON that one kind of evidence fills
in production's snapshot and reads back, typed by that kind. The manifest itself declares only what every
backup has (files, source, row counts, the schema); a new kind's section needs no change there."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from verifier.errors import VerifierError
from verifier.manifest import Manifest

_T = TypeVar("_T")


class SectionDamaged(VerifierError):
    """A manifest's section is not what its kind wrote (edited by hand, or damaged)."""


class Section(Generic[_T]):
    """The manifest key `name`, holding a `_T` (pydantic-typed), or absent: a manifest written by an older
    agent, or a backup for which the kind read nothing."""

    def __init__(self, name: str, type_: Any) -> None:
        self.name = name
        self._adapter: TypeAdapter[_T] = TypeAdapter(type_)

    def of(self, manifest: Manifest | None) -> _T | None:
        """Returns the section as `manifest` holds it, validated once (None when the manifest or the
        section is absent). Raises SectionDamaged when the stored section does not validate."""
        if manifest is None or manifest.__pydantic_extra__ is None:
            return None
        stored = manifest.__pydantic_extra__.get(self.name)
        if stored is None:
            return None
        try:
            value = self._adapter.validate_python(stored)
        except ValidationError as error:
            problem = str(error).splitlines()[0]
            raise SectionDamaged(f"the manifest of {manifest.name}: its '{self.name}' is damaged ({problem})") from None
        manifest.__pydantic_extra__[self.name] = value  # typed from now on, written back as it was
        return value

    def of_sections(self, sections: dict[str, Any]) -> _T | None:
        """Returns the section among `sections` as a kind's reading put it there (None when absent)."""
        value: _T | None = sections.get(self.name)
        return value
