"""Where blocks live: one interface, four implementations.

- `LocalBlockstore`: a folder, no daemon (the default). Writes are atomic and idempotent, so an
  interrupted add can simply be run again: blocks already stored are skipped, never duplicated.
- `KuboRpc`: a user's own Kubo node (0.25 or later) over its HTTP RPC API.
- `PinningService`: the IPFS Pinning Service API (Pinata and others), bearer token.
- `Gateway`: a trustless HTTP gateway, read only (`?format=raw` blocks, or a whole CAR).

Every `get_block` verifies the bytes against the CID before returning them, whichever backend
served them. HTTP backends take an `httpx.Client` from the caller (timeouts, proxies and TLS are the
caller's policy), so this module opens no connection of its own.

# NOTE: Kubo is spoken to with plain httpx rather than `ipfshttpclient`: its last release (0.7)
# refuses any daemon newer than 0.8 and is unmaintained, and the few RPC calls needed here are
# simple POSTs.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx

from daimm.errors import IntegrityError, StorageError
from daimm.ipfs.car import CarReader
from daimm.ipfs.multiformats import CID, RAW, verify_block

__all__ = [
    "Backend",
    "Gateway",
    "KuboRpc",
    "LocalBlockstore",
    "PinStatus",
    "PinningService",
]


class Backend(ABC):
    """A place to put, get and pin blocks. `get_block` always returns verified bytes."""

    #: Shown in error messages, e.g. "local blockstore /home/me/.daimm/blocks".
    label: str = "backend"

    def get_block(self, cid: CID) -> bytes:
        """The block named `cid`, checked against it.

        Raises:
            StorageError: the backend does not have it or cannot be reached.
            IntegrityError: the backend returned bytes that are not this block.
        """
        return verify_block(cid, self._get(cid))

    @abstractmethod
    def _get(self, cid: CID) -> bytes:
        """The bytes stored under `cid`, unverified."""

    def has_block(self, cid: CID) -> bool:
        raise StorageError(f"{self.label} cannot tell which blocks it holds")

    def put_block(self, cid: CID, data: bytes) -> None:
        raise StorageError(f"{self.label} is read only; store blocks in a blockstore or Kubo")

    def pin(self, cid: CID, name: str | None = None) -> None:  # noqa: B027 - optional hook
        """Ask the backend to keep the DAG under `cid`. A no-op where nothing is ever dropped."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources the backend opened itself (none by default)."""


class LocalBlockstore(Backend):
    """Blocks as files under a folder, sharded like Kubo's flatfs (`<dir>/<xy>/<key>.data`).

    The key is the base32 multihash, so the same block filed under a CIDv0 and a CIDv1 is stored
    once.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser()
        self.label = f"local blockstore {self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the block store at {self.root}: {exc}") from exc

    def _path(self, cid: CID) -> Path:
        key = CID(1, RAW, cid.digest).__str__()[1:]  # base32 of a fixed prefix + the digest
        return self.root / key[-3:-1] / f"{key}.data"

    def _get(self, cid: CID) -> bytes:
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            raise StorageError(
                f"block {cid} is not in the {self.label}; add the file or import its CAR first"
            ) from None

    def has_block(self, cid: CID) -> bool:
        return self._path(cid).is_file()

    def put_block(self, cid: CID, data: bytes) -> None:
        path = self._path(cid)
        if path.is_file():
            return
        path.parent.mkdir(exist_ok=True)
        # NOTE: write to a temporary name and rename: a crash leaves either no block or a whole
        # one, never a truncated file that a later add would skip as present.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def count(self) -> int:
        """How many distinct blocks are stored (for tests and `--verbose` output)."""
        return sum(1 for _ in self.root.glob("*/*.data"))


def _http_error(label: str, exc: httpx.HTTPError) -> StorageError:
    return StorageError(f"{label} could not be reached: {exc}; check that it is running")


def _raise_for_status(label: str, response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    detail = response.text.strip().replace("\n", " ")[:300]
    try:
        body = response.json()
        if isinstance(body, dict):
            err = body.get("error")
            if isinstance(err, dict):  # pinning service: {"error": {"reason", "details"}}
                detail = f"{err.get('reason')}: {err.get('details', '')}".strip(": ")
            elif "Message" in body:  # Kubo: {"Message", "Code", "Type"}
                detail = str(body["Message"])
    except ValueError:
        pass
    hint = " (check the access token)" if response.status_code in (401, 403) else ""
    raise StorageError(f"{label} refused to {what}: HTTP {response.status_code} {detail}{hint}")


class KuboRpc(Backend):
    """A Kubo node's RPC API (`http://127.0.0.1:5001` by default).

    Uses `block/put`, `block/get`, `block/stat` and `pin/add`: everything daimm needs, and the CIDs
    stay the ones daimm computed (Kubo only stores the blocks).
    """

    def __init__(self, client: httpx.Client, url: str = "http://127.0.0.1:5001"):
        self._client = client
        self._url = url.rstrip("/") + "/api/v0"
        self.label = f"Kubo RPC at {url}"

    def _post(self, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.post(self._url + path, **kwargs)
        except httpx.HTTPError as exc:
            raise _http_error(self.label, exc) from exc
        _raise_for_status(self.label, response, what)
        return response

    def _get(self, cid: CID) -> bytes:
        return self._post("/block/get", f"return block {cid}", params={"arg": str(cid)}).content

    def has_block(self, cid: CID) -> bool:
        try:
            response = self._client.post(
                self._url + "/block/stat", params={"arg": str(cid), "offline": "true"}
            )
        except httpx.HTTPError as exc:
            raise _http_error(self.label, exc) from exc
        return response.is_success

    def put_block(self, cid: CID, data: bytes) -> None:
        params = {"cid-codec": cid.codec_name, "mhtype": "sha2-256", "mhlen": "32", "pin": "false"}
        response = self._post(
            "/block/put",
            f"store block {cid}",
            params=params,
            files={"data": ("block", data, "application/octet-stream")},
        )
        try:
            stored = CID.parse(str(response.json()["Key"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{self.label} answered block/put with {response.text!r}") from exc
        if stored.digest != cid.digest:
            raise IntegrityError(f"{self.label} stored block {cid} under a different hash {stored}")

    def pin(self, cid: CID, name: str | None = None) -> None:
        self._post("/pin/add", f"pin {cid}", params={"arg": str(cid), "recursive": "true"})


@dataclass(frozen=True, slots=True)
class PinStatus:
    """A pinning service's answer: https://ipfs.github.io/pinning-services-api-spec/."""

    request_id: str
    status: str  # queued | pinning | pinned | failed
    cid: str
    delegates: tuple[str, ...] = ()


class PinningService(Backend):
    """The IPFS Pinning Service API, authenticated with a bearer token.

    A pinning service fetches the DAG itself from the IPFS network (from `origins`, if given); it
    serves no blocks over this API. So `put_block` forwards to `upstream` (for example the user's
    Kubo node, which then provides the blocks) and `get_block` needs a gateway.
    """

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        token: str,
        *,
        upstream: Backend | None = None,
        origins: tuple[str, ...] = (),
    ):
        if not token:
            raise StorageError("the pinning service needs an access token (DAIMM_PINNING_TOKEN)")
        self._client = client
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._upstream = upstream
        self._origins = origins
        self.label = f"pinning service {self._url}"
        self.last_status: PinStatus | None = None

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(
                method, self._url + path, headers=self._headers, **kwargs
            )
        except httpx.HTTPError as exc:
            raise _http_error(self.label, exc) from exc
        _raise_for_status(self.label, response, what)
        return response

    @staticmethod
    def _status(body: Any) -> PinStatus:
        try:
            return PinStatus(
                request_id=str(body["requestid"]),
                status=str(body["status"]),
                cid=str(body["pin"]["cid"]),
                delegates=tuple(str(d) for d in body.get("delegates", ())),
            )
        except (KeyError, TypeError) as exc:
            raise StorageError(
                f"the pinning service answered with a malformed PinStatus: {body}"
            ) from exc

    def _get(self, cid: CID) -> bytes:
        if self._upstream is None:
            raise StorageError(f"{self.label} serves no blocks; fetch {cid} through a gateway")
        return self._upstream.get_block(cid)

    def has_block(self, cid: CID) -> bool:
        return bool(self.find(cid))

    def put_block(self, cid: CID, data: bytes) -> None:
        if self._upstream is None:
            raise StorageError(
                f"{self.label} cannot receive blocks; add to a Kubo node and pin from there"
            )
        self._upstream.put_block(cid, data)

    def pin(self, cid: CID, name: str | None = None) -> None:
        self.last_status = self.add_pin(cid, name)

    def add_pin(self, cid: CID, name: str | None = None) -> PinStatus:
        """`POST /pins`: ask the service to pin `cid`; returns the queued request."""
        body: dict[str, Any] = {"cid": str(cid)}
        if name:
            body["name"] = name
        if self._origins:
            body["origins"] = list(self._origins)
        return self._status(self._request("POST", "/pins", f"pin {cid}", json=body).json())

    def get_pin(self, request_id: str) -> PinStatus:
        """`GET /pins/{requestid}`: the current state of a pin request."""
        return self._status(
            self._request("GET", f"/pins/{request_id}", f"report pin {request_id}").json()
        )

    def find(self, cid: CID) -> list[PinStatus]:
        """`GET /pins?cid=...`: pin requests for `cid` in any state."""
        body = self._request(
            "GET",
            "/pins",
            f"list pins of {cid}",
            params={"cid": str(cid), "status": "queued,pinning,pinned,failed"},
        ).json()
        try:
            return [self._status(item) for item in body["results"]]
        except (KeyError, TypeError) as exc:
            raise StorageError(
                f"the pinning service answered with a malformed list: {body}"
            ) from exc

    def remove_pin(self, request_id: str) -> None:
        """`DELETE /pins/{requestid}`."""
        self._request("DELETE", f"/pins/{request_id}", f"remove pin {request_id}")


class Gateway(Backend):
    """A trustless HTTP gateway (https://specs.ipfs.tech/http-gateways/trustless-gateway/)."""

    RAW_TYPE = "application/vnd.ipld.raw"
    CAR_TYPE = "application/vnd.ipld.car"

    def __init__(self, client: httpx.Client, url: str = "https://ipfs.io"):
        self._client = client
        self._url = url.rstrip("/")
        self.label = f"gateway {self._url}"

    def _get(self, cid: CID) -> bytes:
        try:
            response = self._client.get(
                f"{self._url}/ipfs/{cid}",
                params={"format": "raw"},
                headers={"Accept": self.RAW_TYPE},
            )
        except httpx.HTTPError as exc:
            raise _http_error(self.label, exc) from exc
        _raise_for_status(self.label, response, f"return block {cid}")
        return response.content

    def iter_car(self, cid: CID) -> Iterator[tuple[CID, bytes]]:
        """Stream the whole DAG under `cid` as a CAR; every block is verified as it arrives."""
        try:
            with self._client.stream(
                "GET",
                f"{self._url}/ipfs/{cid}",
                params={"format": "car", "dag-scope": "all"},
                headers={"Accept": f"{self.CAR_TYPE};version=1;order=dfs;dups=n"},
            ) as response:
                _raise_for_status(self.label, response, f"return a CAR for {cid}")
                reader = CarReader(cast(BinaryIO, _IterStream(response.iter_bytes())))
                yield from reader.blocks()
        except httpx.HTTPError as exc:
            raise _http_error(self.label, exc) from exc


class _IterStream:
    """A read()-able view of an iterator of byte strings (for streaming a CAR off HTTP)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = bytearray()

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            n = len(self._buf)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out
