"""Kernel sets: how a module declares its loop templates once and gets compiled kernels from them.

A module that has kernels makes one :class:`KernelSet` of its templates::

    KERNELS = KernelSet("prelu", {"fwd": _fwd_template, "bwd": _bwd_template},
                        consts=dict(PIECE=PIECE))

    KERNELS.run("fwd", x.dtype, backend, x, w, out)      # compiles on first use, then cached

The set builds each (template, dtype, backend[, variant]) clone once, on first use, with
:func:`fastops._jit.instantiate` (so every clone has its own name and its own on-disk cache
entry), compiles the ``"parallel"`` backend with ``parallel=True`` and every other backend
serially, and hands the thread count to Numba (:func:`fastops._threads.sync`) before it runs a
parallel kernel. Dispatch (which backend, which variant) stays with the caller's pure dispatch
function; the set only builds and runs what it is asked for.

Bindings. Every kernel of a set for ``dtype`` has ``T`` (the dtype's scalar type: write constants
as ``T(0.5)``), the set's ``consts``, and what ``bind(dtype, which, variant)`` returns (the op's
scalar functions, dtype-dependent constants). The names a module's templates take from their
bindings are declared once at the top of the module as ``T = EXP = UNBOUND`` (so that linters
and readers see where they come from); a template that uses a name its set does not bind fails
to compile, naming the global.

Every set is listed in :data:`SETS` (by name); :func:`compiled` lists the kernels built so far in
this process (what ``python -m fastops warmup`` reports).
"""
import numpy as np

from . import _dispatch, _jit, _threads

SETS = {}


class _Unbound:
    """Placeholder for a template global that a kernel set binds per kernel."""

    def __repr__(self):
        return "UNBOUND"


UNBOUND = _Unbound()


def _default_name(prefix):
    def name(which, dt, backend, variant):
        parts = [prefix, str(which)]
        if dt is not None:
            parts.append(_jit.SUFFIX[dt])
        parts.append(backend)
        return "_".join(parts)

    return name


class KernelSet:
    """The loop templates of one module and the kernels compiled from them.

    ``templates``: ``{which: template}``, or a function ``(which, variant) -> template``.
    ``consts``: globals bound in every kernel of the set.
    ``bind``: a function ``(dtype, which, variant) -> dict`` of further globals (``dtype`` is a
    ``np.dtype``, or None for a dtype-generic set).
    ``kernel_name``: a function ``(which, dtype, backend, variant) -> str``; by default
    ``"{name}_{which}_{f32|f64}_{backend}"``. Names must be unique across the package: each is
    also the kernel's on-disk cache entry.
    """

    def __init__(self, name, templates, *, consts=None, bind=None, kernel_name=None):
        if name in SETS:
            raise ValueError(f"kernel set {name!r} is declared twice")
        self.name = name
        self._templates = templates
        self._consts = dict(consts or {})
        self._bind = bind
        self._kernel_name = kernel_name or _default_name(name)
        self._kernels = {}  # (which, dtype as given, backend, variant) -> dispatcher
        self._built = {}  # kernel name -> dispatcher
        SETS[name] = self

    def template(self, which, variant=None):
        t = self._templates
        return t[which] if isinstance(t, dict) else t(which, variant)

    def kernel_name(self, which, dtype, backend="serial", variant=None):
        dt = None if dtype is None else np.dtype(dtype)
        return self._kernel_name(which, dt, backend, variant)

    def kernel(self, which, dtype, backend="serial", variant=None):
        """The kernel ``which`` for ``dtype`` and ``backend`` (compiled on its first call)."""
        k = self._kernels.get((which, dtype, backend, variant))  # hot path: dtype as the caller has it
        if k is None:
            k = self._build(which, dtype, backend, variant)
        return k

    def run(self, which, dtype, backend, *args, variant=None):
        """Run kernel ``which`` on ``args`` (after syncing the thread count for a parallel one)."""
        if backend == "parallel":
            _threads.sync()
        return self.kernel(which, dtype, backend, variant)(*args)

    def ready(self, which, dtype, backend, variant=None):
        """The kernel, with the thread count synced for a parallel one: for a caller that calls it
        next in one of several ways (``run`` when the arguments are known here)."""
        if backend == "parallel":
            _threads.sync()
        return self.kernel(which, dtype, backend, variant)

    def _build(self, which, dtype, backend, variant):
        dt = None if dtype is None else np.dtype(dtype)
        key = (which, dt, backend, variant)
        k = self._kernels.get(key)
        if k is None:
            name = self._kernel_name(which, dt, backend, variant)
            bindings = {} if dt is None else {"T": dt.type}
            bindings.update(self._consts)
            if self._bind is not None:
                bindings.update(self._bind(dt, which, variant))
            k = _jit.instantiate(
                self.template(which, variant), name, parallel=(backend == "parallel"), **bindings
            )
            self._kernels[key] = k
            self._built[name] = k
        self._kernels[(which, dtype, backend, variant)] = k
        return k

    def compiled(self):
        """Names of this set's kernels built so far in this process."""
        return sorted(self._built)


class PlaneSet(KernelSet):
    """A kernel set whose kernels loop over independent planes (the shape and pooling families):
    serial or parallel by :func:`fastops._dispatch.parallel_backend` ("cheap" elements touched,
    the planes as units; each plane is handled by one thread in a fixed order)."""

    def backend(self, dtype, planes, size):
        return plane_backend(dtype, planes, size)

    def call(self, which, dtype, planes, size, *args):
        """Run ``which`` over ``planes`` planes touching ``size`` elements in all."""
        self.run(which, dtype, plane_backend(dtype, planes, size), *args)

    def explain(self, which, dtype, planes, size):
        be = plane_backend(dtype, planes, size)
        return {
            "kernel": self.kernel_name(which, dtype, be),
            "backend": be,
            "planes": planes,
            "threads": _threads.get_num_threads(),
            "parallel_min_elements": _dispatch.PARALLEL_MIN_WORK["cheap"],
        }


def plane_backend(dtype, planes, size):
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), units=planes)


def compiled():
    """``{set name: [kernel names]}`` of every set with kernels built in this process."""
    return {name: s.compiled() for name, s in sorted(SETS.items()) if s._built}
