"""The dashboard's static shell: files of ``server/dashboard/static`` served at ``/dashboard/``.

Open to everyone (the route table says so): the shell holds no data, and every data call
it makes carries the key the user typed. Only files that exist inside the folder are
served; a path that leaves it, or names a folder, is a 404. The Content-Security-Policy
lets the page load and fetch only from this server (no CDN, no inline script), so a
payload rendered into the page cannot run script that reads the key.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from server.errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


class AssetNotFound(NotFound):
    def __init__(self, asset: str) -> None:
        super().__init__(f"Not found: no dashboard file {asset!r}")


@router.get("/dashboard")
async def dashboard_root() -> Response:
    """Relative module imports resolve against ``/dashboard/``, so the bare path redirects."""
    return RedirectResponse("/dashboard/", status_code=308)


@router.get("/dashboard/{asset:path}")
async def dashboard_asset(asset: str) -> Response:
    path = asset_path(asset or INDEX)
    return Response(path.read_bytes(), media_type=TYPES[path.suffix], headers=HEADERS)


def asset_path(asset: str) -> Path:
    """The file ``asset`` names inside the static folder, or AssetNotFound."""
    path = (STATIC / asset).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file() or path.suffix not in TYPES:
        raise AssetNotFound(asset)
    return path
