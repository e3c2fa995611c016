"""Forms parse and check what a browser sends; services decide what happens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from challenges.identity.accounts import user_may_use_password
from challenges.ids import is_id
from challenges.leaderboard_rules import initial_is_public, visibility_is_locked
from challenges.models import ChallengePhase
from challenges.services.participation import TEAM_NAME_MAX_LENGTH, site_email_refusal
from challenges.services.profiles import known_time_zones
from challenges.text_checks import NoBidiControls
from frontend.labels import SUBMISSION_STATUS, VISIBILITY


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        required=True,
        label=_("Email"),
        help_text=_("Used for password resets and challenges open to some domains."),
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Before Django's own username rule, whose message does not say which character.
        self.fields["username"].validators.insert(0, NoBidiControls(_("Username")))

    # No "this email is taken" error: it would tell anyone which addresses have accounts.
    # A known address gets a new account like any other, and its owner an email about it
    # (frontend.views.account.signup); addresses are not verified here, so refusing a
    # duplicate protected nothing.
    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        refusal = site_email_refusal(email)
        if refusal:
            raise forms.ValidationError(refusal)
        return email


class LocalPasswordResetForm(PasswordResetForm):
    """Django's reset form (which already skips accounts without a usable password),
    mailing only those who may sign in with a password here."""

    def get_users(self, email):
        return (user for user in super().get_users(email) if user_may_use_password(user))


class TeamCreateForm(forms.Form):
    name = forms.CharField(
        label=_("Team name"),
        max_length=TEAM_NAME_MAX_LENGTH,
        validators=[NoBidiControls(_("Team name"))],
    )


class TeamJoinForm(forms.Form):
    invitation_code = forms.CharField(label=_("Invitation code"), max_length=64)


class HostTeamForm(forms.Form):
    name = forms.CharField(
        label=_("Host team name"),
        max_length=100,
        validators=[NoBidiControls(_("Host team name"))],
    )


class BundleForm(forms.Form):
    file = forms.FileField(
        label=_("Challenge zip"),
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.BUNDLE_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The zip is %(size)s; the limit is %(limit)s."),
                params={
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(settings.BUNDLE_MAX_UPLOAD_BYTES),
                },
            )
        return upload


class IdChoiceField(forms.ModelChoiceField):
    """A row picked by id, the id bounded first (challenges.ids): Django's field passes a
    20-digit value to the database, where SQLite's driver raises OverflowError."""

    def to_python(self, value):
        if value not in self.empty_values and not is_id(str(value)):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(value)


class NewChallengeForm(BundleForm):
    host_team = IdChoiceField(queryset=None, label=_("Host team"), empty_label=None)
    new_challenge = forms.BooleanField(
        required=False,
        label=_("This is a new challenge, even if my team has one with its title"),
        help_text=_(
            "Leave it unticked to be asked before a second challenge with the same title is "
            "made: a new version of an existing challenge is uploaded on its own page."
        ),
    )

    def __init__(self, *args, host_teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["host_team"].queryset = host_teams


def default_meta_fields() -> dict[str, forms.Field]:
    """EvalAI's default meta attributes, fresh for each form."""
    return {
        "method_name": forms.CharField(label=_("Method name"), max_length=1000, required=False),
        "method_description": forms.CharField(
            label=_("Method description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
        ),
        "project_url": forms.URLField(
            label=_("Project URL"), max_length=1000, required=False, assume_scheme="https"
        ),
        "publication_url": forms.URLField(
            label=_("Publication URL"), max_length=1000, required=False, assume_scheme="https"
        ),
    }


class SubmissionForm(forms.Form):
    """The file, the default meta attributes the phase shows, and its own meta attributes.

    The phase's attributes get fields named `meta_<n>` (their names are free text); the
    submission service checks their values.
    """

    file = forms.FileField(label=_("Submission file"), required=False)
    # Set by the page's script once the file went up through the resumable upload API: the
    # form then carries the upload's id instead of the file.
    upload_id = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)
    is_public = forms.BooleanField(label=_("Show on the leaderboard"), required=False)

    def __init__(self, *args, phase: ChallengePhase, host: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.phase = phase
        self.fields["is_public"].initial = initial_is_public(phase, None)
        if visibility_is_locked(phase):
            self.fields["is_public"].disabled = True
            self.fields["is_public"].help_text = _("This phase shows every submission.")
        elif phase.is_restricted_to_select_one_submission:
            self.fields["is_public"].help_text = _(
                "Your team shows one submission per phase: this one would replace it."
            )
        if host:
            self.fields["is_baseline"] = forms.BooleanField(
                label=_("Baseline (shown on the leaderboard, marked, without a rank)"),
                required=False,
            )
        if phase.allowed_submission_file_types:
            self.fields["file"].widget.attrs["accept"] = ",".join(
                phase.allowed_submission_file_types
            )
        visible = [
            d.get("name")
            for d in phase.default_submission_meta_attributes or []
            if isinstance(d, dict) and str(d.get("is_visible", True)).lower() == "true"
        ]
        for name, field in default_meta_fields().items():
            if not phase.default_submission_meta_attributes or name in visible:
                self.fields[name] = field
        self.meta_names: dict[str, str] = {}
        for index, definition in enumerate(phase.submission_meta_attributes or []):
            if not isinstance(definition, dict) or not definition.get("name"):
                continue
            key = f"meta_{index}"
            self.meta_names[key] = str(definition["name"])
            self.fields[key] = _meta_field(definition)

    @property
    def meta_fields(self):
        return [self[key] for key in self.meta_names]

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("upload_id"):
            self.add_error("file", _("Choose the file to submit."))
        return data

    @property
    def method_fields(self):
        return [self[name] for name in default_meta_fields() if name in self.fields]

    def meta_values(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data.get(key)
            for key, name in self.meta_names.items()
            if self.cleaned_data.get(key) not in (None, "", [])
            or isinstance(self.cleaned_data.get(key), bool)
        }


def _meta_field(definition: dict[str, Any]) -> forms.Field:
    kind = definition.get("type", "text")
    label = str(definition["name"])
    help_text = str(definition.get("description", ""))
    required = str(definition.get("required", False)).lower() == "true"
    options = [(str(o), str(o)) for o in definition.get("options") or []]
    if kind == "radio":
        return forms.ChoiceField(
            label=label,
            help_text=help_text,
            required=required,
            choices=options,
            widget=forms.RadioSelect,
        )
    if kind == "checkbox":
        return forms.MultipleChoiceField(
            label=label,
            help_text=help_text,
            required=required,
            choices=options,
            widget=forms.CheckboxSelectMultiple,
        )
    if kind == "boolean":
        return forms.BooleanField(label=label, help_text=help_text, required=False)
    return forms.CharField(label=label, help_text=help_text, required=required, max_length=10000)


class HostSubmissionFilter(forms.Form):
    """The host's submission list filters. Bad values are ignored, never an error page."""

    phase = forms.ChoiceField(required=False, label=_("Phase"))
    status = forms.ChoiceField(
        required=False,
        label=_("Status"),
        choices=[("", _("any")), *SUBMISSION_STATUS.items()],
    )
    team = forms.CharField(required=False, max_length=100, label=_("Team name contains"))

    def __init__(self, *args, phases, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["phase"].choices = [("", _("any")), *[(p.codename, p.name) for p in phases]]


class VisibilityForm(forms.Form):
    visibility = forms.TypedChoiceField(
        coerce=int, choices=list(VISIBILITY.items()), label=_("Visibility")
    )


class PreferencesForm(forms.Form):
    """The language and time zone a person reads pages in (frontend.views.preferences)."""

    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        help_text=_("Dates and deadlines on every page are shown in this zone."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(z, z) for z in sorted(known_time_zones())]
