from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from challenges.models import (
    AuditEvent,
    Challenge,
    ChallengeParticipation,
    ChallengePhase,
    ChallengePhaseSplit,
    DatasetSplit,
    EvaluationScript,
    HostTeam,
    HostTeamMember,
    Leaderboard,
    Round,
    TeamMerge,
    Webhook,
    WebhookDelivery,
)
from challenges.services.audit import audit_record
from challenges.services.challenges import challenge_approve, challenge_reject
from challenges.services.hosting import participation_set_banned


class HostTeamMemberInline(admin.TabularInline):
    model = HostTeamMember
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(HostTeam)
class HostTeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [HostTeamMemberInline]


class PhaseInline(admin.StackedInline):
    model = ChallengePhase
    extra = 0
    show_change_link = True
    fields = [
        "name",
        "codename",
        "start_date",
        "end_date",
        "is_public",
        "submission_type",
        "max_submissions_per_day",
        "max_submissions_per_month",
        "max_submissions",
        "max_concurrent_submissions_allowed",
        "is_submission_paused",
    ]


class DatasetSplitInline(admin.TabularInline):
    model = DatasetSplit
    extra = 0


class LeaderboardInline(admin.TabularInline):
    model = Leaderboard
    extra = 0


class ScriptInline(admin.TabularInline):
    model = EvaluationScript
    extra = 0
    can_delete = False
    readonly_fields = [
        "version",
        "sha256",
        "archive",
        "archive_sha256",
        "source",
        "requirements",
        "created_by",
        "created_at",
    ]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    # Few, narrow columns: with the admin's navigation and the filters, eight of them were
    # cut at 1280 px. `approved_by_admin` follows `review`; the dates share one column.
    list_display = ["title", "host_team", "review", "published", "queue", "dates"]
    list_filter = ["review", "approved_by_admin", "published"]
    search_fields = ["title", "host_team__name"]
    readonly_fields = [
        "approved_by_admin",
        "review",
        "reviewed_at",
        "warnings",
        "created_at",
        "updated_at",
    ]
    exclude = ["load_warnings", "config"]
    inlines = [PhaseInline, DatasetSplitInline, LeaderboardInline, ScriptInline]
    actions = ["approve", "reject"]

    @admin.display(description=gettext_lazy("Dates"), ordering="start_date")
    def dates(self, obj):
        return format_html(
            '<span style="white-space: nowrap">{} → {}</span>',
            date_format(timezone.localtime(obj.start_date), "Y-m-d") if obj.start_date else "-",
            date_format(timezone.localtime(obj.end_date), "Y-m-d") if obj.end_date else "-",
        )

    @admin.display(description=gettext_lazy("Warnings from the last upload"))
    def warnings(self, obj):
        if not obj.load_warnings:
            return _("none")
        return format_html_join(
            "\n",
            "<div><code>{}</code> {} {}</div>",
            ((w["file"], w["key"], w["message"]) for w in obj.load_warnings),
        )

    @admin.action(description=gettext_lazy("Approve selected challenges"))
    def approve(self, request, queryset):
        # Only the ones not approved yet: approving again would count them twice in the
        # message and audit a decision nobody made.
        pending = [c for c in queryset if c.review != Challenge.Review.APPROVED]
        for challenge in pending:
            challenge_approve(challenge=challenge, reviewer=request.user)
        already = queryset.count() - len(pending)
        text = ngettext(
            "Approved %(count)d challenge.", "Approved %(count)d challenges.", len(pending)
        ) % {"count": len(pending)}
        if already:
            text += " " + ngettext(
                "%(count)d was approved already.", "%(count)d were approved already.", already
            ) % {"count": already}
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Reject selected challenges"))
    def reject(self, request, queryset):
        for challenge in queryset:
            challenge_reject(challenge=challenge, reviewer=request.user)
        self.message_user(
            request,
            _("Rejected %(count)s challenge(s).") % {"count": queryset.count()},
            messages.WARNING,
        )


class PhaseSplitInline(admin.TabularInline):
    model = ChallengePhaseSplit
    extra = 0


@admin.register(ChallengePhase)
class ChallengePhaseAdmin(admin.ModelAdmin):
    list_display = ["codename", "name", "challenge", "start_date", "end_date", "submission_type"]
    list_filter = ["submission_type"]
    search_fields = ["codename", "name", "challenge__title"]
    inlines = [PhaseSplitInline]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("phase", "number", "data_version", "opened_at", "opened_by")
    list_filter = ("phase__challenge",)
    readonly_fields = ("opened_at",)


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("team", "challenge", "url", "is_active", "created_at")
    list_filter = ("is_active", "challenge")
    search_fields = ("team__name", "url")
    exclude = ("secret",)  # signs deliveries: shown to the team only


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("pk", "webhook", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ChallengeParticipation)
class ChallengeParticipationAdmin(admin.ModelAdmin):
    """Bans go through the actions (or the form), which call the service: the team's
    leaderboard entries must go in the same transaction as the flag."""

    list_display = ["team", "challenge", "is_banned", "banned_reason", "is_host_team"]
    list_filter = ["is_banned", "is_host_team"]
    search_fields = ["team__name", "challenge__title", "team__members__username"]
    fields = ["challenge", "team", "accepted_terms_by", "accepted_terms_at", "is_host_team"]
    fields += ["is_banned", "banned_reason"]
    readonly_fields = ["challenge", "team", "accepted_terms_by", "accepted_terms_at"]
    readonly_fields += ["is_host_team"]
    actions = ["ban", "unban"]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        participation_set_banned(
            participation=obj, banned=obj.is_banned, reason=obj.banned_reason or "", by=request.user
        )

    @admin.action(description=gettext_lazy("Ban selected teams from the leaderboards"))
    def ban(self, request, queryset):
        for participation in queryset.select_related("challenge"):
            participation_set_banned(
                participation=participation,
                banned=True,
                reason=f"banned by {request.user}",
                by=request.user,
            )
        self.message_user(
            request, _("Banned %(count)s team(s).") % {"count": queryset.count()}, messages.WARNING
        )

    @admin.action(description=gettext_lazy("Lift the ban of selected teams"))
    def unban(self, request, queryset):
        for participation in queryset.select_related("challenge"):
            participation_set_banned(participation=participation, banned=False, by=request.user)
        self.message_user(
            request, _("Lifted %(count)s ban(s).") % {"count": queryset.count()}, messages.SUCCESS
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows made by services only: shown in the admin, never added, changed or deleted."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the log is written by services, never edited, never deleted here."""

    list_display = ["at", "actor_name", "action", "challenge", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]
    date_hierarchy = "at"
    readonly_fields = ["at", "actor", "actor_name", "action", "challenge", "target", "details"]


@admin.register(TeamMerge)
class TeamMergeAdmin(ReadOnlyAdmin):
    """Read-only: merges are made by challenges.services.merges, which checks their rules."""

    list_display = [
        "requested_at",
        "challenge",
        "requesting_team_name",
        "receiving_team_name",
        "status",
        "submissions_moved",
    ]
    list_filter = ["status"]
    search_fields = ["requesting_team_name", "receiving_team_name"]


class AuditedUserAdmin(UserAdmin):
    """Django's user admin; banning a user (unticking "active") goes in the audit log."""

    def save_model(self, request, obj, form, change):
        was_active = (
            type(obj).objects.filter(pk=obj.pk).values_list("is_active", flat=True).first()
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        if change and was_active is not None and was_active != obj.is_active:
            audit_record(
                actor=request.user,
                action=AuditEvent.Action.USER_UNBAN
                if obj.is_active
                else AuditEvent.Action.USER_BAN,
                target=f"user {obj.pk} ({obj.get_username()})",
            )


_User = get_user_model()
if admin.site.is_registered(_User):
    admin.site.unregister(_User)
admin.site.register(_User, AuditedUserAdmin)

# Register the tournament, sign-in and notification outbox admins.
from challenges import admin_identity  # noqa: E402, F401
from challenges.notifications import admin as notification_admin  # noqa: E402, F401
from challenges.tournaments import admin as tournament_admin  # noqa: E402, F401
