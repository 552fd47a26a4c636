"""Zero-knowledge proofs that a prediction came from the published model (docs/ZK.md).

- :mod:`daimm.zk.circuit`: which ONNX graphs can be proven; the provable sample model;
- :mod:`daimm.zk.srs`: the structured reference string, by path, pinned by hash;
- :mod:`daimm.zk.prover`: build (calibrate, compile, set up), prove, verify, the Solidity verifier;
  each ezkl step in a worker process with a timeout;
- :mod:`daimm.zk.binding`: a proof's public instances, bound to a receipt and a weights hash.

ezkl is imported only inside the worker process, so importing this package is cheap.
"""

from daimm.zk.binding import Proof, instances_hash, quantize
from daimm.zk.circuit import check_provable, train_provable_sample
from daimm.zk.prover import (
    Circuit,
    build_circuit,
    generate_test_srs,
    load_circuit,
    prove,
    render_verifier,
    verify,
)
from daimm.zk.srs import check_srs

__all__ = [
    "Circuit",
    "Proof",
    "build_circuit",
    "check_provable",
    "check_srs",
    "generate_test_srs",
    "instances_hash",
    "load_circuit",
    "prove",
    "quantize",
    "render_verifier",
    "train_provable_sample",
    "verify",
]
