"""Content-addressed storage, byte-compatible with Kubo: UnixFS files, CAR v1, four backends.

Pure over streams and blocks: the network client is passed in, nothing here imports ape, web3 or
the relayer.
"""

from daimm.ipfs.backends import (
    Backend,
    Gateway,
    KuboRpc,
    LocalBlockstore,
    PinningService,
    PinStatus,
)
from daimm.ipfs.car import CarReader, write_car
from daimm.ipfs.files import (
    add_file,
    atomic_output,
    export_car,
    fetch_file,
    fetch_file_via_car,
    hash_file,
    import_car,
)
from daimm.ipfs.multiformats import CID, verify_block
from daimm.ipfs.unixfs import (
    KUBO_CID_V1,
    KUBO_DEFAULT,
    PROFILES,
    UNIXFS_V1_2025,
    ImportResult,
    Profile,
    import_file,
    iter_dag,
    iter_file,
    profile_for,
)

__all__ = [
    "CID",
    "KUBO_CID_V1",
    "KUBO_DEFAULT",
    "PROFILES",
    "UNIXFS_V1_2025",
    "Backend",
    "CarReader",
    "Gateway",
    "ImportResult",
    "KuboRpc",
    "LocalBlockstore",
    "PinStatus",
    "PinningService",
    "Profile",
    "add_file",
    "atomic_output",
    "export_car",
    "fetch_file",
    "fetch_file_via_car",
    "hash_file",
    "import_car",
    "import_file",
    "iter_dag",
    "iter_file",
    "profile_for",
    "verify_block",
    "write_car",
]
