"""Loaded by the evalai CLI's interpreter in tests only (on its PYTHONPATH).

Every `evalai` command first asks pypi.org for the CLI's latest version. Tests talk to
127.0.0.1 only, so that one request is answered here, with the version installed; every
other request goes out unchanged.
"""

import requests

_send = requests.Session.send
_VERSION_URL = "https://pypi.org/pypi/evalai/json"


def _send_offline(self, request, **kwargs):
    if request.url == _VERSION_URL:
        response = requests.Response()
        response.status_code = 200
        response.url = request.url
        response.request = request
        response._content = b'{"releases": {"1.3.18": []}}'
        response.headers["Content-Type"] = "application/json"
        return response
    return _send(self, request, **kwargs)


requests.Session.send = _send_offline
