"""Django admin: the outbox (what was sent, what waits, why it failed), read-only, and the
hosts' chat hooks. Moderation happens in the forum; its trail is in the audit log."""

from __future__ import annotations

from django.contrib import admin

from challenges.models import ChatHook, NotificationEvent, OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("pk", "transport", "kind", "user", "status", "attempts", "created_at")
    list_filter = ("status", "transport", "kind")
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(NotificationEvent)
class NotificationEventAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "challenge", "created_at", "fanned_out_at")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in NotificationEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ChatHook)
class ChatHookAdmin(admin.ModelAdmin):
    list_display = ("pk", "challenge", "flavour", "url", "created_at")
    list_filter = ("flavour",)
