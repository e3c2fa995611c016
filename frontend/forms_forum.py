"""Forms of the forum pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class ThreadForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Message (Markdown)"), max_length=20_000, widget=forms.Textarea(attrs={"rows": 8})
    )


class PostForm(forms.Form):
    body = forms.CharField(
        label=_("Reply (Markdown)"), max_length=20_000, widget=forms.Textarea(attrs={"rows": 6})
    )
    quotes = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


class WriteUpForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Write-up (Markdown)"), max_length=20_000, widget=forms.Textarea(attrs={"rows": 12})
    )
    code_url = forms.URLField(
        label=_("Code link (optional)"), required=False, max_length=1000, assume_scheme="https"
    )
