"""EvalAI's remote-evaluation routes, for the hosts' own worker (EvalAI-Starters'
remote_challenge_evaluation): poll the challenge's queue, mark a submission running,
post its outcome, delete the message. Hosts of the challenge only, with their token."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from challenges.api.evalai.base import EvalAIView
from challenges.api.evalai.jobs import json_object
from challenges.services.remote_evaluation import (
    access_remote_challenge,
    access_remote_queue,
    remote_message_delete,
    remote_message_receive,
    remote_submission_finish,
    remote_submission_start,
)
from challenges.services.submissions import SubmissionRefused

FINAL = {"FINISHED": True, "FAILED": False}


class QueueReceive(EvalAIView):
    """The next submission to evaluate, held for the visibility timeout, or an empty body."""

    def get(self, request, queue_name: str):
        challenge = access_remote_queue(request.user, queue_name)
        message = remote_message_receive(challenge=challenge)
        if message is None:
            return Response({"body": None, "receipt_handle": None})
        return Response({"body": message.body(), "receipt_handle": message.receipt_handle})


class QueueDelete(EvalAIView):
    """Delete a message by its receipt handle."""

    def post(self, request, queue_name: str):
        challenge = access_remote_queue(request.user, queue_name)
        remote_message_delete(
            challenge=challenge, receipt_handle=str(json_object(request).get("receipt_handle", ""))
        )
        return Response({"success": f"Message deleted successfully from the queue: {queue_name}"})


class UpdateSubmission(EvalAIView):
    """PATCH `submission_status: RUNNING` starts an attempt; PUT `FINISHED` (with `result`,
    EvalAI's JSON list of {split: {label: value}}) or `FAILED` ends it."""

    def patch(self, request, challenge_pk: int):
        return self._update(request, challenge_pk)

    def put(self, request, challenge_pk: int):
        return self._update(request, challenge_pk)

    def _update(self, request, challenge_pk: int):
        challenge = access_remote_challenge(request.user, challenge_pk)
        data = json_object(request)
        wanted = str(data.get("submission_status", "")).strip().upper()
        if wanted == "RUNNING":
            submission = remote_submission_start(
                challenge=challenge, submission_id=data.get("submission")
            )
            return Response({"success": f"Submission {submission.pk} is running"})
        if wanted not in FINAL:
            raise SubmissionRefused(
                _("submission_status must be RUNNING, FINISHED or FAILED, not %(value)s.")
                % {"value": wanted or "empty"},
                field="submission_status",
            )
        submission = remote_submission_finish(
            challenge=challenge,
            submission_id=data.get("submission"),
            phase_id=data.get("challenge_phase"),
            finished=FINAL[wanted],
            result=data.get("result"),
            stdout=str(data.get("stdout", "") or ""),
            stderr=str(data.get("stderr", "") or ""),
            metadata=data.get("metadata"),
        )
        return Response(
            {
                "success": "Submission result has been successfully updated",
                "status": submission.status,
            },
            status=status.HTTP_200_OK,
        )
