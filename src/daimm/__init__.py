"""daimm: a decentralized AI model marketplace.

Creators publish encrypted models on IPFS; licences, rentals and payments live on chain; an
inference relayer serves predictions only to wallets that hold a live licence.
"""

from daimm.errors import DaimmError

__all__ = ["DaimmError", "__version__"]
__version__ = "0.1.0"
