"""Fused per-time-step kernels of the recurrent layers (gate nonlinearities and cell updates).

The matrix products run on fastops' GEMM engine (``fastops._gemm``): the input projection of all time steps of a layer
as one ``(T*B, I) @ (I, G*H)`` GEMM, the recurrent product ``h @ W_hh^T`` once per step, and in the
backward the weight gradients as one GEMM each over all steps. What is left per step, the gate
activations and the cell update (forward) or their derivatives (backward), is one fused pass over
``(B, G*H)`` here, with the gate blocks taken as slices of each row (PyTorch's gate order: LSTM
``i, f, g, o``; GRU ``r, z, n``), so every inner loop is contiguous and vectorizes.

Work is split over batch rows (each row written by one iteration): results do not depend on the
thread count.
"""
from numba import prange

from .. import _dispatch, _jit, _random, _threads
from .._elementwise import math_bindings
from .._kernelset import KernelSet, UNBOUND

# template globals, bound per kernel by this module's kernel set (fastops._kernelset)
T = ACT = DACT = EXP = SIG = TANH = TANHF = UNIFORM = UNBOUND


def _sig(v):
    return T(1) / (T(1) + EXP(-v))


def _tanh(v):
    return TANH(v)


def _relu(v):
    return T(0) if v <= T(0) else v  # keeps NaN, as torch.relu


def _dtanh_out(h):  # derivative of tanh in terms of its output
    return T(1) - h * h


def _drelu_out(h):
    return T(0) if h <= T(0) else T(1)  # torch: threshold_backward passes NaN outputs


# ---------------------------------------------------------------------------------------------
# simple RNN: h = ACT(xp + gh)


def _rnn_fwd_template(xp, gh, h_out):
    B = xp.shape[0]
    for b in prange(B):
        xr = xp[b]
        gr = gh[b]
        ho = h_out[b]
        for j in range(ho.size):
            ho[j] = ACT(xr[j] + gr[j])


def _rnn_bwd_template(h, dh, dpre):
    B = h.shape[0]
    for b in prange(B):
        hr = h[b]
        dr = dh[b]
        pr = dpre[b]
        for j in range(hr.size):
            pr[j] = dr[j] * DACT(hr[j])


# ---------------------------------------------------------------------------------------------
# LSTM: gates i, f, g, o; c = f c_prev + i g; h = o tanh(c)


def _lstm_fwd_template(xp, gh, c_prev, act, h_out, c_out):
    # xp: x W_ih^T + b_ih + b_hh, gh: h W_hh^T (B, 4H); act receives the activated gates
    B = xp.shape[0]
    H = h_out.shape[1]
    for b in prange(B):
        xi, xf, xg, xo = xp[b, 0:H], xp[b, H : 2 * H], xp[b, 2 * H : 3 * H], xp[b, 3 * H : 4 * H]
        hi, hf, hg, ho_ = gh[b, 0:H], gh[b, H : 2 * H], gh[b, 2 * H : 3 * H], gh[b, 3 * H : 4 * H]
        ai, af, ag, ao = act[b, 0:H], act[b, H : 2 * H], act[b, 2 * H : 3 * H], act[b, 3 * H : 4 * H]
        cp = c_prev[b]
        co = c_out[b]
        hout = h_out[b]
        for j in range(H):
            i = SIG(xi[j] + hi[j])
            f = SIG(xf[j] + hf[j])
            g = TANHF(xg[j] + hg[j])
            o = SIG(xo[j] + ho_[j])
            ai[j] = i
            af[j] = f
            ag[j] = g
            ao[j] = o
            c = f * cp[j] + i * g
            co[j] = c
            hout[j] = o * TANHF(c)


def _lstm_bwd_template(act, c_prev, c, dh, dc, dgates, dc_prev):
    B = c.shape[0]
    H = c.shape[1]
    one = T(1)
    for b in prange(B):
        ai, af, ag, ao = act[b, 0:H], act[b, H : 2 * H], act[b, 2 * H : 3 * H], act[b, 3 * H : 4 * H]
        di, df, dg, do = dgates[b, 0:H], dgates[b, H : 2 * H], dgates[b, 2 * H : 3 * H], dgates[b, 3 * H : 4 * H]
        cp = c_prev[b]
        cr = c[b]
        dhr = dh[b]
        dcr = dc[b]
        dcp = dc_prev[b]
        for j in range(H):
            i = ai[j]
            f = af[j]
            g = ag[j]
            o = ao[j]
            tc = TANHF(cr[j])
            dcj = dcr[j] + dhr[j] * o * (one - tc * tc)
            di[j] = dcj * g * i * (one - i)
            df[j] = dcj * cp[j] * f * (one - f)
            dg[j] = dcj * i * (one - g * g)
            do[j] = dhr[j] * tc * o * (one - o)
            dcp[j] = dcj * f


# ---------------------------------------------------------------------------------------------
# GRU: r = sig(xr + hr), z = sig(xz + hz), n = tanh(xn + r hn), h = (1 - z) n + z h_prev


def _gru_fwd_template(xp, gh, h_prev, save, h_out):
    # xp: x W_ih^T + b_ih, gh: h W_hh^T + b_hh (B, 3H); save (B, 4H) receives r, z, n, hn
    B = xp.shape[0]
    H = h_out.shape[1]
    one = T(1)
    for b in prange(B):
        xr, xz, xn = xp[b, 0:H], xp[b, H : 2 * H], xp[b, 2 * H : 3 * H]
        hr, hz, hn = gh[b, 0:H], gh[b, H : 2 * H], gh[b, 2 * H : 3 * H]
        sr, sz, sn, sh = save[b, 0:H], save[b, H : 2 * H], save[b, 2 * H : 3 * H], save[b, 3 * H : 4 * H]
        hp = h_prev[b]
        ho = h_out[b]
        for j in range(H):
            r = SIG(xr[j] + hr[j])
            z = SIG(xz[j] + hz[j])
            n = TANHF(xn[j] + r * hn[j])
            sr[j] = r
            sz[j] = z
            sn[j] = n
            sh[j] = hn[j]
            ho[j] = (one - z) * n + z * hp[j]


def _gru_bwd_template(save, h_prev, dh, dgi, dgh, dh_direct):
    B = h_prev.shape[0]
    H = h_prev.shape[1]
    one = T(1)
    for b in prange(B):
        sr, sz, sn, sh = save[b, 0:H], save[b, H : 2 * H], save[b, 2 * H : 3 * H], save[b, 3 * H : 4 * H]
        ir, iz, in_ = dgi[b, 0:H], dgi[b, H : 2 * H], dgi[b, 2 * H : 3 * H]
        gr, gz, gn = dgh[b, 0:H], dgh[b, H : 2 * H], dgh[b, 2 * H : 3 * H]
        hp = h_prev[b]
        dhr = dh[b]
        dd = dh_direct[b]
        for j in range(H):
            r = sr[j]
            z = sz[j]
            n = sn[j]
            d = dhr[j]
            dnp = d * (one - z) * (one - n * n)
            dzp = d * (hp[j] - n) * z * (one - z)
            drp = dnp * sh[j] * r * (one - r)
            ir[j] = drp
            iz[j] = dzp
            in_[j] = dnp
            gr[j] = drp
            gz[j] = dzp
            gn[j] = dnp * r
            dd[j] = d * z


# ---------------------------------------------------------------------------------------------
# dropout mask between layers (counter-based, fastops._random): keep iff u >= p, scaled 1/(1-p)


def _mask_template(key, p, scale, out):
    n = out.size
    for i in prange(n):
        out[i] = scale if UNIFORM(key, i) >= p else T(0)


_TEMPLATES = {
    "rnn_fwd": _rnn_fwd_template,
    "rnn_bwd": _rnn_bwd_template,
    "lstm_fwd": _lstm_fwd_template,
    "lstm_bwd": _lstm_bwd_template,
    "gru_fwd": _gru_fwd_template,
    "gru_bwd": _gru_bwd_template,
    "mask": _mask_template,
}


def _bindings(dt, name, act):
    sfx = _jit.SUFFIX[dt]
    mb = math_bindings(dt)

    def scalar(fn, tag):
        return _jit.inline(_jit.clone(fn, f"rec_{tag}_{sfx}", mb))

    binds = dict(SIG=scalar(_sig, "sig"), TANHF=scalar(_tanh, "tanh"), UNIFORM=_random.UNIFORM[dt])
    if act is not None:
        binds["ACT"] = scalar(_tanh if act == "tanh" else _relu, act)
        binds["DACT"] = scalar(_dtanh_out if act == "tanh" else _drelu_out, "d" + act)
    return binds


# variant: the simple RNN's nonlinearity ("tanh"/"relu"), None for the other kernels
KERNELS = KernelSet(
    "recurrent", _TEMPLATES, bind=_bindings,
    kernel_name=lambda name, dt, backend, act: f"rec_{name}{f'_{act}' if act else ''}_{_jit.SUFFIX[dt]}_{backend}",
)


def backend(dtype, size):
    """Serial or parallel for a per-step kernel touching ``size`` elements (gate math: transcendental)."""
    return _dispatch.parallel_backend(dtype, size, _threads.get_num_threads(), "transcendental")


def run(name, dtype, size, *args, act=None):
    """Run kernel ``name`` on ``args``; ``size``: elements touched (chooses serial or parallel)."""
    KERNELS.run(name, dtype, backend(dtype, size), *args, variant=act)
