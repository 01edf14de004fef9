"""Leaf utilities every layer may use: content digests, atomic file writes, the toolchain and
platform a build runs on."""
