"""``runstore ui``: a local, read-only web viewer of the runs in a storage.

:func:`create_app` returns it as an ASGI application, for ``runstore ui`` (which serves
it with uvicorn) or to mount in another. It reads through the storage's public calls
only and never writes. Needs the ``ui`` extra: ``pip install "runstore[ui]"`` (Starlette,
Jinja2 and uvicorn); its templates, stylesheet and script are in the package, so its
pages need no network.
"""

from __future__ import annotations

from runstore.ui.app import create_app

__all__ = ["create_app"]
