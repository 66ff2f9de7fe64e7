"""Hash slots: which of the 16384 Redis Cluster slots a key belongs to.

The slot is CRC16-XMODEM of the key mod 16384, or of its hash tag: the bytes between the first
`{` and the next `}`, if that is non-empty, so `{user1000}.following` and `{user1000}.followers`
share a slot. It runs on every command, so it uses `binascii.crc_hqx`, which is CRC16-XMODEM
(polynomial 0x1021, initial value 0) implemented in C; the Keyspace inlines the tag-less case.
"""

from __future__ import annotations

from binascii import crc_hqx

SLOTS = 16384  # Redis Cluster hash slots
SLOT_MASK = SLOTS - 1


def key_slot(key: bytes) -> int:
    """Redis Cluster slot: CRC16-XMODEM mod 16384 of the key, or of its first non-empty {tag}."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & SLOT_MASK
