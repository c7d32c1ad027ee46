"""An HTTP client for the conveyor server's API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conveyor.client.bodies import Issue, RunDetail, RunList, RunSummary, SubmitPayload
from conveyor.client.profiles import Profile

if TYPE_CHECKING:
    import httpx
from conveyor.errors import ConveyorError


class ServerError(ConveyorError):
    """The server refused a call or could not be reached; with its status and any issues."""

    def __init__(self, status: int, message: str, issues: list[Issue] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.issues = issues or []

    def show(self) -> str:
        lines = [f"conveyor: server answered {self.status or 'nothing'}: {self}"]
        lines += [str(issue.get("text") or issue) for issue in self.issues]
        return "\n".join(lines)


class ServerClient:
    """The server's API as methods; every failure is a :class:`ServerError`."""

    def __init__(self, profile: Profile, timeout: float = 30.0) -> None:
        try:
            import httpx
        except ImportError:
            raise ServerError(0, "talking to a server needs: pip install 'conveyor[server]'") from None
        headers = {"Authorization": f"Bearer {profile.token}"} if profile.token else {}
        self.endpoint = profile.endpoint
        self._http = httpx.Client(base_url=profile.endpoint, headers=headers, timeout=timeout)
        self._httpx = httpx

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, f"/api/v1{path}", **kw)
        except self._httpx.HTTPError as exc:
            raise ServerError(0, f"cannot reach {self.endpoint}: {exc}") from None
        if response.status_code >= 400:
            try:
                body = response.json().get("error", {})
            except ValueError:
                body = {"message": response.text[:300]}
            raise ServerError(response.status_code, str(body.get("message")), body.get("issues"))
        return response

    # The server's answers are the bodies its schemas promise (``client.bodies``).
    def submit(self, payload: SubmitPayload) -> RunSummary:
        result: RunSummary = self._call("POST", "/runs", json=payload).json()
        return result

    def runs(self, **filters: str | int | None) -> RunList:
        params = {k: v for k, v in filters.items() if v is not None}
        result: RunList = self._call("GET", "/runs", params=params).json()
        return result

    def run(self, run_id: str) -> RunDetail:
        result: RunDetail = self._call("GET", f"/runs/{run_id}").json()
        return result

    def logs(self, run_id: str, step: str | None = None) -> str:
        params = {"step": step} if step else {}
        return str(self._call("GET", f"/runs/{run_id}/logs", params=params).text)

    def rerun(self, run_id: str, parameters: Mapping[str, object]) -> RunSummary:
        result: RunSummary = self._call(
            "POST", f"/runs/{run_id}/rerun", json={"parameters": parameters}
        ).json()
        return result

    def action(self, run_id: str, verb: str) -> RunSummary:
        result: RunSummary = self._call("POST", f"/runs/{run_id}/{verb}").json()
        return result
