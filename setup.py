"""Build the optional compiled request path, `jobcached.net._speedups` (Cython).

Everything else is in setup.cfg. The extension is optional in two ways, so a machine without a
compiler still installs and runs the pure-Python path (`jobcached.net.resp`): without Cython
(a build without isolation) it is not declared at all, and `optional=True` lets setuptools
carry on when the C compiler fails or is missing.
"""

from __future__ import annotations

from setuptools import Extension, setup


def _extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    extensions = cythonize([Extension("jobcached.net._speedups", ["jobcached/net/_speedups.pyx"])],
                           compiler_directives={"language_level": "3"}, quiet=True)
    for extension in extensions:
        extension.optional = True  # set after cythonize, which does not carry it over
    return list(extensions)


setup(ext_modules=_extensions())
