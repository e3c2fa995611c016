"""The submit page finishes a resumable upload: the form's fields go with the upload's id
instead of the file, and are checked as for a plain upload."""

from __future__ import annotations

import hashlib

import pytest

from challenges.models import ResumableUpload, Submission
from tests.challenges.test_resumable_uploads import TUS, create, patch, submission_meta
from tests.workers.pipeline_helpers import load_approved, participate

pytestmark = pytest.mark.django_db


@pytest.fixture
def challenge(users, host_teams, starter_zips):
    challenge = load_approved(starter_zips["tabular_classification"], users, host_teams["alice"])
    participate(users["charlie"], challenge)
    return challenge


def page(challenge) -> str:
    return f"/challenges/{challenge.pk}/phases/dev/submit/"


def test_the_page_submits_an_uploaded_file_with_the_forms_fields(api, client, users, challenge):
    content = b"id,label\n" + b"".join(b"%d,1\n" % i for i in range(100))
    url = create(api("charlie"), content, **submission_meta(challenge))["Location"]
    patch(api("charlie"), url, 0, content)
    upload = ResumableUpload.objects.get()
    client.force_login(users["charlie"])
    markup = client.get(page(challenge)).content.decode()
    assert "data-resumable=" in markup and "resumable.js" in markup
    response = client.post(
        page(challenge),
        {"upload_id": upload.pk, "method_name": "from the page", "meta_1": "Linear"},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["ok"] is True
    submission = Submission.objects.get()
    assert submission.method_name == "from the page"
    assert submission.meta_attributes == {"ModelFamily": "Linear"}
    assert submission.input_sha256 == hashlib.sha256(content).hexdigest()
    assert ResumableUpload.objects.get().finished_at is not None


def test_an_unknown_or_other_users_upload_is_a_form_error(api, client, users, challenge):
    content = b"id,label\n1,1\n"
    url = create(api("charlie"), content, **submission_meta(challenge))["Location"]
    patch(api("charlie"), url, 0, content)
    upload = ResumableUpload.objects.get()
    client.force_login(users["alice"])  # the host, not the uploader
    response = client.post(
        page(challenge), {"upload_id": upload.pk}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "unknown or expired" in response.json()["html"]
    client.force_login(users["charlie"])
    response = client.post(page(challenge), {"method_name": "x"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert "Choose the file" in response.json()["html"]
    assert not Submission.objects.exists()
    assert api("charlie").head(url, **TUS).status_code == 200
