"""Admin views of who signs in through the identity provider, and the break-glass admin.

Read-only apart from deleting: a link is made only by signing in, and deleting one lets
that provider account start afresh (a new user) at its next sign-in."""

from django.contrib import admin

from challenges.models import BreakGlassAdmin, ExternalIdentity


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "provider", "subject", "created_at", "last_sign_in")
    list_filter = ("provider",)
    search_fields = ("user__username", "user__email", "subject")
    readonly_fields = ("user", "provider", "subject", "created_at", "last_sign_in")

    def has_add_permission(self, request):
        return False


@admin.register(BreakGlassAdmin)
class BreakGlassAdminAdmin(admin.ModelAdmin):
    list_display = ("user", "created_at")
    readonly_fields = ("user", "created_at")

    def has_add_permission(self, request):
        # Made by `manage.py create_breakglass_admin`, which also sets the password.
        return False
