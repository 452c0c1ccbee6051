"""Log-softmax along a dim (``torch.nn.functional.log_softmax``); kernels shared with softmax."""
from .._op import op
from .softmax import Rowwise

LOG_SOFTMAX = Rowwise("log_softmax", log=True)


@op
def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """Log-softmax along ``dim`` (``torch.nn.functional.log_softmax``):
    ``(x - max) - log(sum(exp(x - max)))``, one ``log`` per row.

    Arguments as in :func:`fastops.softmax` (``dim`` required, ``dtype=`` casts the input first).
    ``-inf`` inputs give ``-inf``; a row with NaN, or of only ``-inf``, gives NaN (as in PyTorch).

    Backward: ``log_softmax.backward(grad_output, input, dim, dtype=None, output=None)`` ->
    ``(grad_input,)`` with ``grad_input = grad_output - exp(y) * sum(grad_output)`` per row;
    ``output=`` (the forward's result ``y``) skips recomputing it.
    """
    return LOG_SOFTMAX.forward(input, dim, dtype)


@log_softmax.defbackward
def _(grad_output, input, dim=None, _stacklevel=3, dtype=None, output=None):
    return (LOG_SOFTMAX.backward(grad_output, input, dim, dtype, output),)


log_softmax.defexplain(LOG_SOFTMAX.explain)

__all__ = ["log_softmax"]
