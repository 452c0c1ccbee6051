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

Saved intermediates (``op.vjp``): ``out, pullback = op.vjp(*args, **kwargs)`` runs the forward once
and returns its result with a function ``pullback(grad_output, needs=None)`` that returns exactly
what ``op.backward(grad_output, *args, **kwargs)`` returns, bitwise. Every op has it (where the
backward takes the forward's result, ``output=``, as softmax's does, the pullback passes it); an op whose
backward would otherwise recompute part of its forward (the recurrent layers' tape, batch_norm's
batch statistics, a fused activation's pre-activation) defines its own with ``defvjp``, which keeps
those intermediates in the pullback instead. The arguments are read again by the pullback: do not
modify them in between (the same rule as for ``backward``).

A subset of the gradients (``needs``): ``op.backward(grad_output, *args, needs=mask, **kwargs)``
and ``pullback(grad_output, needs=mask)`` take a sequence of bools, one per entry of the backward's
result (PyTorch's ``output_mask`` of ``convolution_backward``); an entry whose flag is False comes
back as None. Ops that can skip the work declare it (``defbackward(fn, needs=3)``: ``fn`` gets
``needs=`` and may leave out what is not asked for; the conv family, ``linear``, the recurrent
layers); for the others the full backward runs and the unwanted entries are dropped.
"""
import functools

import numpy as np

REGISTRY = {}


class Op:
    def __init__(self, forward, name=None):
        functools.update_wrapper(self, forward)
        self.name = name or forward.__name__
        self._forward = forward
        self._backward = None
        self._explain = None
        self._vjp = None
        self._backward_needs = None  # the backward's number of entries, where it takes ``needs=``
        REGISTRY[self.name] = self

    def __call__(self, *args, **kwargs):
        return self._forward(*args, **kwargs)

    def backward(self, grad_output, *args, needs=None, **kwargs):
        """Gradients of the forward's array parameters, in signature order (see the op's docstring).
        ``needs``: None (all) or one bool per entry; entries not asked for are None."""
        if self._backward is None:  # pragma: no cover - every registered op defines one
            raise NotImplementedError(f"{self.name} has no backward")
        needs = _check_needs(self.name, needs, self._backward_needs)
        if needs is not None and self._backward_needs:
            return _masked(self.name, self._backward(grad_output, *args, needs=needs, **kwargs), needs)
        return _masked(self.name, self._backward(grad_output, *args, **kwargs), needs)

    def vjp(self, *args, **kwargs):
        """``(output, pullback)``: the forward's result, and ``pullback(grad_output, needs=None)``
        returning what ``backward`` returns for these arguments, without running the forward again
        (see the module docstring)."""
        if self._vjp is None:
            out = self._forward(*args, **kwargs)
            # a backward that accepts the forward's result (softmax, log_softmax: output=) gets it
            extra = {"output": out} if self._takes_output() and "output" not in kwargs else {}

            def pullback(grad_output, needs=None):
                return self.backward(grad_output, *args, needs=needs, **kwargs, **extra)

            return out, pullback
        out, inner = self._vjp(*args, **kwargs)
        name = self.name

        def pullback(grad_output, needs=None):
            needs = _check_needs(name, needs, self._backward_needs)
            return _masked(name, inner(grad_output, needs), needs)

        return out, pullback

    def explain(self, shape, dtype="float32", **params):
        """The kernel the dispatch layer picks for an input of ``shape`` and ``dtype``."""
        if self._explain is None:
            return {"op": self.name, "kernel": "single"}
        return dict(op=self.name, **self._explain(tuple(shape), dtype, **params))

    def _takes_output(self):
        if not hasattr(self, "_output_param"):
            import inspect

            self._output_param = "output" in inspect.signature(self._backward).parameters
        return self._output_param

    def defbackward(self, fn=None, *, needs=None):
        """Register the backward. ``needs=n`` (the number of entries it returns): ``fn`` accepts
        ``needs=`` (a tuple of n bools, or None for all) and may skip the entries not asked for."""
        if fn is None:
            return lambda f: self.defbackward(f, needs=needs)
        self._backward = fn
        self._backward_needs = needs
        return fn

    def defvjp(self, fn):
        """Register ``fn(*args, **kwargs) -> (output, inner)`` with ``inner(grad_output, needs)``
        (``needs`` a tuple of bools or None) returning the backward's entries from the saved state."""
        self._vjp = fn
        return fn

    def defexplain(self, fn):
        self._explain = fn
        return fn

    def __repr__(self):
        return f"<fastops op {self.name}>"

    def __reduce__(self):  # ops pickle by reference (multiprocessing, Dask)
        return (_lookup, (self.name,))


def _check_needs(name, needs, count=None):
    if needs is None:
        return None
    if isinstance(needs, (str, bytes, dict)) or not hasattr(needs, "__iter__"):
        raise TypeError(f"{name}: argument 'needs' must be None or a sequence of bools (one per gradient), "
                        f"got {needs!r}")
    out = tuple(needs)
    for v in out:
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{name}: argument 'needs' must hold bools (one per gradient), got {v!r}")
    if count is not None and len(out) != count:
        raise ValueError(f"{name}: argument 'needs' has {len(out)} entries, the backward returns {count} "
                         f"(one per array parameter of the forward)")
    return tuple(bool(v) for v in out)


def _masked(name, result, needs):
    """``result`` with the entries ``needs`` does not ask for set to None (length checked)."""
    if needs is None:
        return result
    needs = _check_needs(name, needs, len(result))
    return tuple(r if n else None for r, n in zip(result, needs))


def _lookup(name):
    import fastops  # noqa: F401  (registers every op)

    return REGISTRY[name]


def op(fn=None, *, name=None):
    if fn is None:
        return lambda f: Op(f, name)
    return Op(fn, name)
