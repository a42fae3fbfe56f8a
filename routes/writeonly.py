"""Which form fields carry credentials: every field of a form class whose widget is a
password input (a write-only field: a secret to paste, a header value, a basic-auth
password, a variable's value), and the fields a form names in `credential_fields` (a
credential in a text area, such as the admin's `Name: value` header lines).

Read from the form classes themselves (every subclass of Django's BaseForm loaded in
this process), so a new form's write-only field counts without being listed here. It
is looked up only for a call that matches a route event and has a form body.
"""

from __future__ import annotations

from django import forms


def field_names() -> frozenset[str]:
    """The names of every write-only or declared credential field of the loaded forms."""
    names: set[str] = set()
    for form in _form_classes():
        declared = getattr(form, "credential_fields", ())
        for name, field in getattr(form, "base_fields", {}).items():
            if name in declared or isinstance(field.widget, forms.PasswordInput):
                names.add(name)
    return frozenset(names)


def is_write_only(key: str, names: frozenset[str]) -> bool:
    """Whether a posted key names such a field, with or without a form's prefix
    (`settings-token`, `variable_set-0-value`)."""
    return key in names or key.rsplit("-", 1)[-1] in names


def _form_classes() -> list[type]:
    seen: set[type] = set()
    todo: list[type] = [forms.BaseForm]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return list(seen)
