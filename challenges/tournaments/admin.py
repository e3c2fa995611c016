"""Django admin for live tournaments: read-only views of settings, models and round
submissions (every change goes through the services in challenges.tournaments)."""

from django.contrib import admin

from challenges.models import RoundSubmission, Tournament, TournamentModel


@admin.register(Tournament)
class TournamentAdmin(admin.ModelAdmin):
    list_display = ["phase", "cumulative_rounds", "round_hours", "rank_by"]
    readonly_fields = ["phase", "cumulative_rounds", "round_hours", "rank_by"]

    def has_add_permission(self, request):
        return False


@admin.register(TournamentModel)
class TournamentModelAdmin(admin.ModelAdmin):
    list_display = ["pk", "phase", "team", "file_name", "uploaded_at", "is_current"]
    list_filter = ["is_current"]
    search_fields = ["team__name", "file_name", "sha256"]
    readonly_fields = [f.name for f in TournamentModel._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(RoundSubmission)
class RoundSubmissionAdmin(admin.ModelAdmin):
    list_display = ["pk", "round", "team", "source", "status", "submitted_at", "failure_kind"]
    list_filter = ["status", "source", "failure_kind"]
    search_fields = ["team__name"]
    readonly_fields = [f.name for f in RoundSubmission._meta.fields]

    def has_add_permission(self, request):
        return False
