"""Replay traces under "what if" policies: `costscope simulate`."""
