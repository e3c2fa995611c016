from django.apps import AppConfig


class FrontendConfig(AppConfig):
    name = "frontend"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        # Every way of signing in (the form, the admin's, SSO backends) sends this
        # signal: the person's language and time zone apply from their first page on.
        user_logged_in.connect(_load_preferences, dispatch_uid="frontend-preferences")


def _load_preferences(sender, request, user, **kwargs) -> None:
    from frontend.middleware import remember_preferences

    if request is not None:
        remember_preferences(request, user)
