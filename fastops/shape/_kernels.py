"""Kernel cache shared by the shape and pooling families: one compiled clone per (template, dtype,
backend), dispatched by :func:`fastops._dispatch.plane_backend`."""
import numpy as np

from .. import _dispatch, _jit, _threads


class Kernels:
    def __init__(self, prefix, templates, **bindings):
        self.prefix = prefix
        self.templates = templates
        self.bindings = bindings
        self._cache = {}

    def get(self, which, dtype, backend):
        dt = np.dtype(dtype)
        key = (which, dt, backend)
        k = self._cache.get(key)
        if k is None:
            k = _jit.instantiate(
                self.templates[which],
                self.name(which, dt, backend),
                parallel=(backend == "parallel"),
                T=dt.type,
                **self.bindings,
            )
            self._cache[key] = k
        return k

    def name(self, which, dtype, backend):
        return f"{self.prefix}_{which}_{_jit.SUFFIX[np.dtype(dtype)]}_{backend}"

    def call(self, which, dtype, planes, size, *args):
        be = backend(dtype, planes, size)
        if be == "parallel":
            _threads.sync()
        self.get(which, dtype, be)(*args)


def backend(dtype, planes, size):
    return _dispatch.plane_backend(dtype, planes, size, _threads.get_num_threads())


def explain(kernels, which, dtype, planes, size):
    be = backend(dtype, planes, size)
    return {
        "kernel": kernels.name(which, dtype, be),
        "backend": be,
        "planes": planes,
        "threads": _threads.get_num_threads(),
        "parallel_min_elements": _dispatch.PARALLEL_MIN_ELEMENTS["cheap"],
    }
