"""Access grants in a model build: the named grants of the model file, the
``required_access_grants`` that refer to them (topics, views, fields), and the user attributes
the model reads anywhere (grants, filters, ``{{ omni_attributes.NAME }}`` in SQL).

Every name is checked when the model loads, so a rule that could not be applied never
reaches a query: a misspelt grant or attribute would otherwise open what it should close.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

from assay.errors import did_you_mean
from assay.semantic.build_state import BuildState
from assay.semantic.files import ModelFile
from assay.semantic.model import OPEN, AccessGrant, GrantRule
from assay.semantic.templates import Template
from assay.semantic.viewer import SYSTEM_ATTRIBUTES

_GRANT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class GrantBuilder(BuildState):
    def _attribute(self, file: str, path: str, name: str) -> bool:
        """Record that the model reads attribute ``name``; an issue when it is not defined
        (checked only when the caller knows the organization's attributes)."""
        self.attributes_used.add(name)
        known = self.known_attributes
        if known is None or name in known or name in SYSTEM_ATTRIBUTES:
            return True
        hint = did_you_mean(name, [*known, *SYSTEM_ATTRIBUTES])
        self.issue(file, path, f"no user attribute {name!r}.{hint} Define it first "
                   "(POST /api/v1/user-attributes or assay attributes create)")  # fmt: skip
        return False

    def _template_attributes(self, tpl: Template | None, file: str, path: str) -> bool:
        ok = True
        for name in tpl.attributes if tpl else ():
            ok = self._attribute(file, path, name) and ok
        return ok

    def _read_grants(self, model_file: ModelFile) -> None:
        for name, spec in model_file.access_grants.items():
            path = f"access_grants.{name}"
            if not _GRANT.match(name):
                self.issue("model", path, f"grant name {name!r} must be a plain identifier")
                continue
            self._attribute("model", f"{path}.user_attribute", spec.user_attribute)
            allowed = frozenset(_text(v) for v in spec.allowed_values)
            self.access_grants[name] = AccessGrant(name, spec.user_attribute, allowed)
        if model_file.default_topic_required_access_grants is not None:
            self.default_grants = self._grant_rule(
                "model",
                "default_topic_required_access_grants",
                model_file.default_topic_required_access_grants,
            )
        self.default_filters = tuple(model_file.default_topic_access_filters)
        for i, default in enumerate(self.default_filters):
            self._attribute(
                "model", f"default_topic_access_filters[{i}].user_attribute", default.user_attribute
            )

    def _grant_rule(self, file: str, path: str, items: Iterable[str] | None) -> GrantRule:
        """``required_access_grants`` parsed; an unknown grant name is an issue (the field
        is then closed to everyone rather than opened)."""
        if not items:
            return OPEN
        elements = []
        for i, item in enumerate(items):
            alternatives = []
            for alt in str(item).split("|"):
                names = frozenset(n.strip() for n in alt.split("&"))
                for name in sorted(names):
                    if name not in self.access_grants:
                        hint = did_you_mean(name, self.access_grants)
                        self.issue(file, f"{path}[{i}]", f"no access grant {name!r} in the "
                                   f"model file's access_grants.{hint}")  # fmt: skip
                alternatives.append(names)
            elements.append(tuple(alternatives))
        return GrantRule(tuple(elements))


def _text(value: object) -> str:
    """An allowed value as the text a user attribute value is stored as (numbers in their
    shortest form, as a Number attribute's values are)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = format(Decimal(str(value)).normalize(), "f")
        return "0" if text == "-0" else text
    return str(value)
