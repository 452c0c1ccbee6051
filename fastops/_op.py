"""The op object: a forward function that carries its ``.backward`` (and optionally ``.explain``).

Usage in an op file::

    @op
    def relu(x):
        ...

    @relu.defbackward
    def _(grad_output, x):
        ...                      # returns a tuple, one entry per array parameter of the forward

    @relu.defexplain
    def _(shape, dtype=np.float32, **params):
        ...                      # returns the dispatch decision (a dict), for `python -m fastops explain`
"""
import functools

REGISTRY = {}


class Op:
    def __init__(self, forward, name=None):
        functools.update_wrapper(self, forward)
        self.name = name or forward.__name__
        self._forward = forward
        self._backward = None
        self._explain = None
        REGISTRY[self.name] = self

    def __call__(self, *args, **kwargs):
        return self._forward(*args, **kwargs)

    def backward(self, grad_output, *args, **kwargs):
        """Gradients of the forward's array parameters, in signature order (see the op's docstring)."""
        if self._backward is None:  # pragma: no cover - every registered op defines one
            raise NotImplementedError(f"{self.name} has no backward")
        return self._backward(grad_output, *args, **kwargs)

    def explain(self, shape, dtype="float32", **params):
        """The kernel the dispatch layer picks for an input of ``shape`` and ``dtype``."""
        if self._explain is None:
            return {"op": self.name, "kernel": "single"}
        return dict(op=self.name, **self._explain(tuple(shape), dtype, **params))

    def defbackward(self, fn):
        self._backward = fn
        return fn

    def defexplain(self, fn):
        self._explain = fn
        return fn

    def __repr__(self):
        return f"<fastops op {self.name}>"

    def __reduce__(self):  # ops pickle by reference (multiprocessing, Dask)
        return (_lookup, (self.name,))


def _lookup(name):
    import fastops  # noqa: F401  (registers every op)

    return REGISTRY[name]


def op(fn=None, *, name=None):
    if fn is None:
        return lambda f: Op(f, name)
    return Op(fn, name)
