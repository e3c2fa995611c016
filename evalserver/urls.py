from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from evalserver.health import OpsStatus

admin.site.site_header = "evalserver administration"
admin.site.site_title = "evalserver admin"

# MEDIA_ROOT is never served directly: it holds hidden annotations. Files leave
# through views that check access.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/ops/status/", OpsStatus.as_view(), name="api-ops-status"),
    path("api/v1/", include("challenges.api.urls")),
    # EvalAI's own paths, so its CLI and remote-evaluation worker work unchanged.
    path("api/", include("challenges.api.evalai.urls")),
    # The challenge page the evalai CLI links to (for its terms and conditions).
    re_path(
        r"^web/challenges/challenge-page/(?P<challenge_id>[0-9]+)(?:/[\w-]*)?/?$",
        RedirectView.as_view(pattern_name="challenge"),
    ),
    path("", include("frontend.urls")),
]
