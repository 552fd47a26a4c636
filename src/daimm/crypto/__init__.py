"""Encryption of model files and key handling: pure functions over bytes and streams.

- `aead`: the streaming segmented AES-256-GCM file format, with key commitment and associated data.
- `envelope`: the content key wrapped for X25519 recipients, in a JSON document kept apart.
- `keys`: X25519 key pairs and private key files (0600, optional scrypt passphrase).

Nothing here imports ape, web3 or the relayer, and nothing logs a key or plaintext.
"""

from daimm.crypto.aead import (
    DEFAULT_SEGMENT_SIZE,
    HEADER_SIZE,
    Header,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
    generate_content_key,
    model_associated_data,
)
from daimm.crypto.envelope import KeyEnvelope, add_recipient, unwrap_key, wrap_key
from daimm.crypto.keys import (
    PublicKey,
    generate_private_key,
    load_private_key,
    public_key_of,
    save_private_key,
)

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "HEADER_SIZE",
    "Header",
    "KeyEnvelope",
    "PublicKey",
    "add_recipient",
    "ciphertext_size",
    "decrypt_stream",
    "encrypt_stream",
    "generate_content_key",
    "generate_private_key",
    "load_private_key",
    "model_associated_data",
    "public_key_of",
    "save_private_key",
    "unwrap_key",
    "wrap_key",
]
