from django import forms
from django.core.exceptions import ValidationError

from jobs.models import Endpoint
from jobs.runner import load_handler


class EndpointForm(forms.ModelForm):
    class Meta:
        model = Endpoint
        fields = ["name", "handler", "description", "active", "aggregate_stream"]

    def clean_handler(self) -> str:
        path = self.cleaned_data["handler"].strip()
        if not path:
            return path  # remote workers only
        try:
            load_handler(path)
        except (ImportError, ValueError) as exc:
            raise ValidationError(f"Cannot load {path!r}: {exc}") from None
        return path
