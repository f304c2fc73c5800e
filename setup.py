"""The one compiled module: the Claude Code line scanner. Optional: where it cannot be built (no C compiler),
the install goes on and costscope reads those logs with its pure-Python fast path instead."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "costscope.parsers._claude_scan",
            ["costscope/parsers/_claude_scan.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
