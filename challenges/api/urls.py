from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

import evalserver.converters  # noqa: F401  (registers <id:> and <codename:>)
from challenges.api import views

urlpatterns = [
    path("", include("challenges.api.tokens")),
    path("host-teams/", views.HostTeamListCreate.as_view(), name="api-host-teams"),
    path("challenges/", views.ChallengeList.as_view(), name="api-challenges"),
    path("challenges/validate/", views.BundleValidate.as_view(), name="api-bundle-validate"),
    path("challenges/<id:challenge_id>/", views.ChallengeDetail.as_view(), name="api-challenge"),
    path(
        "challenges/<id:challenge_id>/bundle/",
        views.ChallengeBundleUpload.as_view(),
        name="api-challenge-bundle",
    ),
    path("", include("challenges.api.participation")),
    path("", include("challenges.api.merges")),
    path("", include("challenges.api.submissions")),
    path("", include("challenges.api.data")),
    path("", include("challenges.api.uploads")),
    path("", include("challenges.api.webhooks")),
    path("", include("challenges.api.leaderboards")),
    path("", include("challenges.api.tournaments")),
    path("", include("challenges.api.model_uploads")),
    path("", include("challenges.api.discussion")),
    path("", include("challenges.api.notifications")),
    path("", include("challenges.api.analytics")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
