from django.contrib.auth import views as auth_views
from django.urls import path

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from frontend.views import (
    account,
    analytics,
    choices,
    discussion,
    host,
    kaggle,
    leaderboard,
    model_diagnostics,
    notifications,
    participant,
    preferences,
    public,
    sso,
    tournaments,
)

urlpatterns = [
    path("", public.home, name="home"),
    path("challenges/<id:challenge_id>/", public.challenge_detail, name="challenge"),
    path(
        "challenges/<id:challenge_id>/participate/",
        participant.participate,
        name="participate",
    ),
    path(
        "challenges/<id:challenge_id>/submissions/",
        participant.my_submissions,
        name="my-submissions",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/submit/",
        participant.submit,
        name="submit",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/leaderboard/<codename:split>/",
        leaderboard.leaderboard,
        name="leaderboard",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/leaderboard/<codename:split>/"
        "shake-up/",
        kaggle.shake_up_page,
        name="shake-up",
    ),
    path(
        "host/challenges/<id:challenge_id>/phases/<codename:codename>/leaderboard/"
        "<codename:split>/reveal/",
        leaderboard.reveal,
        name="leaderboard-reveal",
    ),
    path("challenges/<id:challenge_id>/merges/", kaggle.merges, name="merges"),
    path(
        "challenges/<id:challenge_id>/merges/request/",
        kaggle.merge_request,
        name="merge-request",
    ),
    path(
        "merges/<id:merge_id>/<str:decision>/",
        kaggle.merge_decide,
        name="merge-decide",
    ),
    path(
        "host/challenges/<id:challenge_id>/phases/<codename:codename>/leaderboard/"
        "<codename:split>/visibility/",
        leaderboard.set_visibility,
        name="leaderboard-visibility",
    ),
    path("submissions/<id:submission_id>/", participant.submission_detail, name="submission"),
    path("submissions/<id:submission_id>/cancel/", participant.cancel, name="submission-cancel"),
    path("submissions/<id:submission_id>/rerun/", host.rerun, name="submission-rerun"),
    path(
        "submissions/<id:submission_id>/public/",
        choices.choose,
        {"what": "public"},
        name="submission-public",
    ),
    path(
        "submissions/<id:submission_id>/final/",
        choices.choose,
        {"what": "final"},
        name="submission-final",
    ),
    path(
        "submissions/<id:submission_id>/baseline/",
        choices.choose,
        {"what": "baseline"},
        name="submission-baseline",
    ),
    path("teams/", participant.teams, name="teams"),
    path("host/", host.dashboard, name="host"),
    path("host/upload/", host.upload, name="host-upload"),
    path("host/challenges/<id:challenge_id>/", host.challenge_manage, name="host-challenge"),
    path(
        "host/challenges/<id:challenge_id>/submissions/",
        host.submissions,
        name="host-submissions",
    ),
    path(
        "host/challenges/<id:challenge_id>/phases/<codename:codename>/rescore/",
        host.rescore,
        name="host-rescore",
    ),
    # Accounts: Django's views with our templates; reset emails go to the console backend.
    # Sign-up, log-in and password reset are throttled (frontend.views.account).
    path("accounts/signup/", account.signup, name="signup"),
    path("accounts/login/", account.login_view, name="login"),
    path("accounts/logout/", account.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", account.tokens, name="tokens"),
    # Company sign-in (OpenID Connect); LDAP signs in through the login form above.
    path("oidc/authenticate/", sso.OIDCStart.as_view(), name="oidc-start"),
    path("oidc/callback/", sso.OIDCCallback.as_view(), name="oidc-callback"),
    path("accounts/preferences/", preferences.preferences, name="preferences"),
    path("i18n/setlang/", preferences.set_language, name="set-language"),
    path("accounts/password/", account.password_change_view, name="password_change"),
    path(
        "accounts/password/done/",
        account.password_change_done_view,
        name="password_change_done",
    ),
    path("accounts/password-reset/", account.password_reset_view, name="password_reset"),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="frontend/accounts/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="frontend/accounts/password_reset_confirm.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="frontend/accounts/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/",
        tournaments.tournament,
        name="tournament",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/open/",
        tournaments.open_round,
        name="tournament-open",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/rounds/<id:number>/targets/",
        tournaments.upload_targets,
        name="tournament-targets",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/rounds/<id:number>/submit/",
        tournaments.submit_predictions,
        name="tournament-submit",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/models/",
        tournaments.upload_model,
        name="tournament-model",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/models/<id:model_id>/current/",
        tournaments.mark_current,
        name="tournament-model-current",
    ),
    # Discussion (issue 26).
    path("challenges/<id:challenge_id>/forum/", discussion.forum, name="forum"),
    path(
        "challenges/<id:challenge_id>/forum/<id:thread_id>/",
        discussion.thread,
        name="forum-thread",
    ),
    path("forum/threads/<id:thread_id>/moderate/", discussion.moderate, name="forum-moderate"),
    path("forum/posts/<id:post_id>/edit/", discussion.post_change, name="forum-post-edit"),
    path("forum/posts/<id:post_id>/delete/", discussion.post_remove, name="forum-post-delete"),
    path("forum/posts/<id:post_id>/hide/", discussion.post_hide, name="forum-post-hide"),
    path("submissions/<id:submission_id>/writeup/", discussion.writeup, name="writeup"),
    path("notifications/", notifications.notifications, name="notifications"),
    path(
        "notifications/<id:notification_id>/",
        notifications.open_notification,
        name="notification-open",
    ),
    path(
        "notifications/settings/",
        notifications.preferences,
        name="notification-preferences",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notifications.unsubscribe,
        name="notifications-unsubscribe",
    ),
    path(
        "host/challenges/<id:challenge_id>/phases/<codename:codename>/analytics/",
        analytics.analytics,
        name="host-analytics",
    ),
    path(
        "challenges/<id:challenge_id>/phases/<codename:codename>/tournament/models/<id:model_id>/diagnostics/",
        model_diagnostics.model_diagnostics,
        name="tournament-model-diagnostics",
    ),
]
