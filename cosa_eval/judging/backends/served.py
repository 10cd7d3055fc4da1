"""What an OpenAI-compatible server really serves: its model name (``GET /v1/models``) and, where
it says so (llama.cpp's ``GET /props``), how many requests it runs at once.

``model: auto`` records the one model the server serves; a name the user set is checked against
the served list, so a run is never recorded under a model that did not answer. An endpoint the user
gave explicitly (``--judge-endpoint``) is used under the judge's name, with the model it serves.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from ...errors import CosaError
from ...redaction import public_url
from .http_client import http_library, make_client, split_base

AUTO = "auto"
PROPS_TIMEOUT_S = 2.0      # /props is optional: a server that is slow to say gets no cap


class ServedModel:
    """The model name to send and record, read once from the server (``base_url`` None: the API)."""

    def __init__(self, model: str, base_url: str | None, api_key: Callable[[], str | None],
                 timeout_s: float, *, endpoint_given: bool = False) -> None:
        self.model, self.base_url, self._api_key = model, base_url, api_key
        self.endpoint_given = endpoint_given      # the user chose this server for this judge's name
        self.timeout_s = timeout_s     # a busy single-slot server answers /models after its current call
        self.slots: int | None = None
        self._resolved: str | None = None

    def resolve(self) -> str:
        """The served model's name; ``CosaError`` when it cannot be known or does not match.

        A user-set name is accepted when the server cannot be reached (a fully cached re-run works
        offline; sending would fail with connection errors anyway)."""
        if self._resolved is not None:
            return self._resolved
        if self.base_url is None:
            self._resolved = self.model
            return self.model
        with make_client(base_url=self.base_url, api_key=self._api_key(), timeout_s=self.timeout_s,
                         connections=1, is_async=False) as client:          # one client for both reads
            served = self._served_ids(client)
            if served is None:
                if self.model == AUTO:
                    raise CosaError(f"cannot read the served model from {public_url(self.base_url)}/models (is the "
                                    "server up?); start it, or set model: in the judge.yaml to the name it serves")
                self._resolved = self.model
                return self.model
            self._resolved = self._pick(served)
            self.slots = self._slots(client)
        return self._resolved

    def _pick(self, served: list[str]) -> str:
        listed = ", ".join(served[:5]) + (" ..." if len(served) > 5 else "")
        if self.model == AUTO:
            if len(served) == 1:
                return served[0]
            raise CosaError(f"the server at {public_url(self.base_url)} serves {len(served) or 'no'} models ({listed}); "
                            "set model: in the judge.yaml to the one to judge with")
        if not served or self.model in served or f"{self.model}:latest" in served:
            return self.model
        if self.endpoint_given and len(served) == 1:     # --judge-endpoint: judge with what it serves
            return served[0]
        if self.endpoint_given:
            return self.model
        raise CosaError(f"judge model {self.model!r} is not served by {public_url(self.base_url)} (it serves: {listed}); "
                        "set model: to a served name, or model: auto to use the one it serves")

    @staticmethod
    def _get(client: Any, url: str, timeout: float) -> Any:
        """JSON of a 200 answer to GET ``url`` (a path under the base URL, or a whole URL), else None."""
        import openai
        try:
            response = client.get(url, cast_to=http_library().Response, options={"timeout": timeout})
            return json.loads(response.content) if response.status_code == 200 else None
        except (openai.APIError, ValueError):
            return None

    def _served_ids(self, client: Any) -> list[str] | None:
        data = self._get(client, "models", self.timeout_s)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return None
        return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]

    def _slots(self, client: Any) -> int | None:
        root = split_base(str(self.base_url))[0].rstrip("/").removesuffix("/v1")
        data = self._get(client, f"{root}/props", min(self.timeout_s, PROPS_TIMEOUT_S))
        slots = data.get("total_slots") if isinstance(data, dict) else None
        return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 else None
