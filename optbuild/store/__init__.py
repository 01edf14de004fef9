"""The build cache: a content-addressed store of stage outputs and one record per stage action,
local or mirrored to a shared fsspec URL."""

from optbuild.store.cas import ActionRecord, Blob, Store

__all__ = ["ActionRecord", "Blob", "Store"]
