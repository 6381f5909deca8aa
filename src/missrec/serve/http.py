"""The HTTP service: a thin FastAPI layer over :class:`~missrec.serve.recommender.Recommender`.

Routes (OpenAPI docs at ``/docs``): ``POST /recommend``, ``POST /embed``, ``PUT /items``,
``DELETE /items/{id}``, ``GET /items/{id}``, ``GET /healthz``, ``GET /readyz``,
``GET /metrics`` (Prometheus text). Every error is a 4xx JSON object
``{"error": message, "field": name}``; write endpoints need the bearer token and are
disabled (403) when none is configured.
"""

import asyncio
import gc
import hmac
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

try:
    from fastapi import Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as e:  # the `serve` extra
    from ..errors import MissrecError

    raise MissrecError(f"the HTTP service needs the serve extra (pip install 'missrec[serve]'): {e}") from None

from .batching import Batcher
from .encode_process import EncoderProcess
from .errors import RequestError
from .limits import BodyLimit
from .metrics import CONTENT_TYPE, Metrics, Observed
from .recommender import Recommender


@dataclass
class ServiceOptions:
    token: Optional[str] = None
    """Bearer token of the write endpoints; None disables writes."""
    protect_reads: bool = False
    """Require the token on /recommend, /embed, GET /items and /metrics as well."""
    max_body_bytes: int = 4 << 20
    """Largest request body accepted (413 above)."""
    max_histories: int = 1024
    """Most histories in one /recommend or /embed request."""
    max_items_per_request: int = 1000
    """Most items in one PUT /items (413 above): a request's items are embedded in one go,
    so this bounds a write's length (catalogue loads: ``missrec items add``)."""
    approximate: bool = False
    """Rank with the FAISS candidate path (:mod:`.ann`) instead of exact scoring."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class RecommendRequest(_Strict):
    history: Optional[list[str]] = Field(None, description="One history of item ids, oldest first.")
    histories: Optional[list[list[str]]] = Field(None, description="Several histories (batch).")
    k: int = Field(10, description="Items to return, 1 to the catalogue size.")
    exclude_seen: bool = Field(False, description="Leave the history's items out of the ranking.")
    unknown: Literal["error", "skip"] = Field("error", description="Unknown ids: fail, or skip and report.")


class EmbedRequest(_Strict):
    history: Optional[list[str]] = None
    histories: Optional[list[list[str]]] = None
    unknown: Literal["error", "skip"] = "error"


class ItemIn(_Strict):
    id: str
    text: Optional[str] = Field(None, description="Item text (also embedded when the bundle's "
                                                  "text encoder is installed and no text features are given).")
    image: Optional[str] = Field(None, description="Base64 of an image file's bytes (embedded when the "
                                                   "bundle's image encoder is installed and no image "
                                                   "features are given).")
    features: dict[str, list[float]] = Field(default_factory=dict,
                                             description="Raw feature vector per modality.")


class ItemsRequest(_Strict):
    items: list[ItemIn]


class CalibrateRequest(_Strict):
    histories: Optional[list[list[str]]] = Field(
        None, description="Users' histories (ids; unknown ones skipped) over which the added items' share "
                          "of the top k is measured.")
    k: int = Field(10, description="The list length.")
    offset: Optional[float] = Field(None, description="Set this offset instead of measuring one (0: off).")
    keep: bool = Field(False, description="Keep the histories and find the offset again after every "
                                          "later write.")


def _error(status: int, field: str, message: str, headers: Optional[dict] = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def _field_of(loc: tuple) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def create_app(rec: Recommender, options: ServiceOptions = ServiceOptions()) -> Any:
    """The ASGI application serving ``rec``."""
    app = FastAPI(title="missrec", description="MISSRec recommendations over a live catalogue.")
    metrics = Metrics()
    if options.approximate:
        rec.enable_approximate()
    reader, writer = _access(options)
    _install_handlers(app)
    _read_routes(app, rec, options, reader)
    _write_routes(app, rec, options, writer)

    @app.get("/metrics", dependencies=[Depends(reader)], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        text = metrics.render({"missrec_catalogue_items": ("Items that can be recommended.", rec.n_items)})
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return Observed(BodyLimit(app, options.max_body_bytes), metrics)


def _access(options: ServiceOptions) -> tuple[Any, Any]:
    """The read and write dependencies: bearer token, compared in constant time."""
    def auth(request: Request, write: bool) -> None:
        if not write and not options.protect_reads:
            return
        if options.token is None:
            raise RequestError("authorization", "writes are disabled: start the server with "
                                                "--token-file or MISSREC_TOKEN", 403)
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), options.token.encode()):
            raise RequestError("authorization", "missing or wrong bearer token", 401)

    # async: a check this cheap should not cost a hop to the thread pool
    async def reader(request: Request) -> None:
        auth(request, write=False)

    async def writer(request: Request) -> None:
        auth(request, write=True)

    return reader, writer


def _read_routes(app: Any, rec: Recommender, options: ServiceOptions, reader: Any) -> None:
    batcher = Batcher(rec)

    @app.post("/recommend", dependencies=[Depends(reader)], response_class=JSONResponse)
    async def recommend(body: RecommendRequest) -> JSONResponse:
        """Top-k items for one history (``history``) or several (``histories``)."""
        histories, single = _histories(body.history, body.histories, options)
        res = await batcher.recommend(histories=histories, k=body.k, exclude_seen=body.exclude_seen,
                                      unknown=body.unknown, field_name="history" if single else "histories")
        # a ready response: the answer is plain JSON already, nothing to validate or encode
        return JSONResponse(res[0].to_json() if single else {"results": [r.to_json() for r in res]})

    @app.post("/embed", dependencies=[Depends(reader)])
    def embed(body: EmbedRequest) -> dict:
        """Sequence vectors u (as the model scores them) of one or several histories."""
        histories, single = _histories(body.history, body.histories, options)
        vectors, notes = rec.embed(histories, body.unknown, "history" if single else "histories")
        out = [{"vector": v.tolist(), **{k: x for k, x in n.to_json().items() if k not in ("items", "scores")}}
               for v, n in zip(vectors, notes)]
        return out[0] if single else {"results": out}

    @app.get("/items/{item_id}", dependencies=[Depends(reader)])
    def get_item(item_id: str) -> dict:
        return rec.get_item(item_id)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> dict:
        return {"status": "ready", "catalogue_size": rec.n_items}


def _write_routes(app: Any, rec: Recommender, options: ServiceOptions, writer: Any) -> None:
    # Writes run one at a time anyway (the recommender's write lock): in one thread of
    # their own, waiting writes queue on the event loop instead of each holding a thread of
    # the pool that /embed and GET /items run in.
    writes = ThreadPoolExecutor(1, thread_name_prefix="missrec-write")

    @app.put("/items", dependencies=[Depends(writer)])
    async def put_items(body: ItemsRequest) -> dict:
        """Add or replace items; immediately rankable, persisted in the bundle. Ranking goes
        on while they are embedded."""
        if len(body.items) > options.max_items_per_request:
            raise RequestError("items", f"at most {options.max_items_per_request} items per request "
                                        f"(got {len(body.items)}); send them in several requests, or "
                                        "load a file with `missrec items add`", 413)
        items = [item.model_dump() for item in body.items]
        return await asyncio.get_running_loop().run_in_executor(writes, rec.add_items, items)

    @app.delete("/items/{item_id}", dependencies=[Depends(writer)])
    async def delete_item(item_id: str) -> dict:
        return await asyncio.get_running_loop().run_in_executor(writes, rec.remove_items, [item_id])

    @app.post("/items/calibrate", dependencies=[Depends(writer)])
    async def calibrate(body: CalibrateRequest) -> dict:
        """Give the items added after training their share of the top k: one offset on their
        scores, measured over the given histories (or set directly); persisted."""
        if (body.histories is None) == (body.offset is None):
            raise RequestError("histories", "give exactly one of 'histories' (to measure the offset) or "
                                            "'offset' (to set one)")
        loop = asyncio.get_running_loop()
        if body.offset is not None:
            return await loop.run_in_executor(writes, rec.set_added_offset, body.offset)
        if len(body.histories) > options.max_histories:
            raise RequestError("histories", f"at most {options.max_histories} histories per request", 413)
        found = await loop.run_in_executor(writes, rec.calibrate_added, body.histories, body.k, body.keep)
        return found.to_json()


def _histories(history: Optional[list[str]], histories: Optional[list[list[str]]],
               options: ServiceOptions) -> tuple[list[list[str]], bool]:
    if (history is None) == (histories is None):
        raise RequestError("history", "give exactly one of 'history' (a list of ids) or "
                                      "'histories' (a list of lists)")
    if histories is not None and len(histories) > options.max_histories:
        raise RequestError("histories", f"at most {options.max_histories} histories per request", 413)
    return ([history], True) if history is not None else (histories, False)


def _install_handlers(app: Any) -> None:
    @app.exception_handler(RequestError)
    def request_error(request: Request, exc: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.field, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid request"}
        where = "body" if first.get("type") == "json_invalid" else _field_of(tuple(first.get("loc", ())))
        return _error(422, where, str(first.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        field = "path" if exc.status_code in (404, 405) else "body"
        return _error(exc.status_code, field, str(exc.detail), getattr(exc, "headers", None))


def run_server(bundle: Path, options: ServiceOptions, host: str, port: int,
               encode_in_process: bool = True) -> None:
    """Load ``bundle`` and serve it until interrupted. New items' content is embedded in a
    child process of lower priority (:mod:`.encode_process`) unless ``encode_in_process``
    is False."""
    import uvicorn  # the serve extra

    rec = Recommender(bundle, encoder=EncoderProcess() if encode_in_process else None)
    try:
        app = create_app(rec, options)
        # A full collection walks every object the process holds (torch's and FastAPI's
        # modules, the model): some 100 ms during which no request moves, the p99 of a
        # loaded server. What is loaded by now lives as long as the server: leave it out.
        gc.collect()
        gc.freeze()
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        rec.close()
