from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy
from django.views.generic import RedirectView

from challenges.ids import ID_PATTERN
from challenges.throttles import PerAddress, PerUsername
from evalserver.health import OpsStatus
from evalserver.metrics import metrics_view
from frontend.views.common import throttle_page

admin.site.site_header = gettext_lazy("evalserver administration")
admin.site.site_title = gettext_lazy("evalserver admin")
# The admin's own login form counts against the same limits as the site's (issue 11).
admin.site.login = throttle_page(("login_ip", PerAddress), ("login_user", PerUsername))(
    admin.site.login
)

# MEDIA_ROOT is never served directly: it holds hidden annotations. Files leave
# through views that check access.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/ops/status/", OpsStatus.as_view(), name="api-ops-status"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("challenges.api.urls")),
    # EvalAI's own paths, so its CLI and remote-evaluation worker work unchanged.
    path("api/", include("challenges.api.evalai.urls")),
    # The challenge page the evalai CLI links to (for its terms and conditions).
    re_path(
        rf"^web/challenges/challenge-page/(?P<challenge_id>{ID_PATTERN})(?:/[\w-]*)?/?$",
        RedirectView.as_view(pattern_name="challenge"),
    ),
    path("", include("frontend.urls")),
]
