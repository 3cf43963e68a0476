"""Validate live responses against the served OpenAPI document, so the two cannot drift."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator


class OpenAPIChecked:
    """An httpx client that checks every response against the receiver's own `/openapi.json`."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.document = self.http.get("/openapi.json").json()

    def request(self, method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        response = self.http.request(method, path or template, **kwargs)
        self.check(method, template, response)
        return response

    def check(self, method: str, template: str, response: httpx.Response) -> None:
        operation = self.document["paths"][template][method.lower()]
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {template} -> undocumented {status}"
        content = operation["responses"][status]["content"]
        media = response.headers["content-type"].split(";")[0]
        assert media in content, f"{method} {template} {status}: undocumented type {media}"
        if media != "application/json":
            return
        schema = content["application/json"]["schema"]
        root = {**schema, "components": self.document["components"]}
        errors = list(Draft202012Validator(root).iter_errors(response.json()))
        assert not errors, f"{method} {template} {status}: {errors[0].message}"

    def close(self) -> None:
        self.http.close()
