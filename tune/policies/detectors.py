"""Host overload detection: THR, IQR, MAD, LR, LRR (Beloglazov & Buyya 2012).

Every detector answers, for an array of hosts, "is this host overloaded with the VMs now on it
(plus, optionally, one more)?" — vectorised, because PABFD asks it of every candidate host for
every VM it places.

Faithful to CloudSim 3.0.3 (``PowerVmAllocationPolicyMigration*``):

* the host history is the sum, index by index, of its VMs' histories scaled to the host, with
  the trailing zeros trimmed (``PowerHostUtilizationHistory.getUtilizationHistory``);
* IQR and MAD need 12 samples, LR and LRR 10; before that they fall back to THR 0.7;
* IQR uses Java's quartile positions ``round(0.25 (n + 1)) - 1`` and ``round(0.75 (n + 1)) - 1``;
* LR fits the last 10 samples and predicts one migration time ahead (``ceil(max VM migration
  time / interval)`` intervals); CloudSim's "loess" weights never apply (no weight is zero), so
  it is a plain least-squares line — and LRR's bisquare re-weighting is a no-op for the same
  reason: in CloudSim LRR is LR.  Our LRR really is robust (bisquare re-weighting, see
  :class:`LocalRegressionRobust`), except in ``cloudsim`` mode.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Optional

import numpy as np

from .base import ClusterState


class OverloadDetector(ABC):
    """Decides which hosts are overloaded."""

    name: str = ""

    @abstractmethod
    def overloaded(self, state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        """Boolean array: is each of ``hosts`` overloaded (with ``extra_vm`` added, if >= 0)?"""

    def utilisation(self, state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        req = state.req_sum[hosts]
        if extra_vm >= 0:
            req = req + state.vm_req[extra_vm]
        return req / state.cap[hosts]


class StaticThreshold(OverloadDetector):
    """THR: overloaded when demand / capacity > ``threshold``."""

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = float(threshold)
        self.name = f"thr-{threshold:g}"

    def overloaded(self, state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        return self.utilisation(state, hosts, extra_vm) > self.threshold


def host_history(state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
    """Rows of host utilisation history (most recent first), with ``extra_vm`` added."""
    H = state.hist[hosts]
    if extra_vm >= 0 and H.shape[1]:
        H = H + state.vm_hist[extra_vm][None, :] * (state.vm_mips[extra_vm] / state.cap[hosts])[:, None]
    return H


def trimmed_length(H: np.ndarray) -> np.ndarray:
    """Length of each row once trailing zeros are cut (CloudSim's ``trimZeroTail``)."""
    if H.shape[1] == 0:
        return np.zeros(len(H), dtype=np.int64)
    nz = H != 0
    last = H.shape[1] - np.argmax(nz[:, ::-1], axis=1)
    return np.where(nz.any(axis=1), last, 0)


def _sorted_padded(H: np.ndarray, n: np.ndarray) -> np.ndarray:
    cols = np.arange(H.shape[1])[None, :]
    return np.sort(np.where(cols < n[:, None], H, np.inf), axis=1)


def _row_median(S: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median of the first ``n`` (sorted) values of each row; rows need n >= 1."""
    lo = np.take_along_axis(S, ((n - 1) // 2)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(S, (n // 2)[:, None], axis=1)[:, 0]
    return (lo + hi) / 2.0


def iqr_rows(H: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Inter-quartile range with Java's quartile positions (CloudSim ``MathUtil.iqr``).

    >>> float(iqr_rows(np.array([[1., 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]), np.array([12]))[0])
    7.0
    """
    S = _sorted_padded(H, n)
    q1 = np.floor(0.25 * (n + 1) + 0.5).astype(np.int64) - 1
    q3 = np.floor(0.75 * (n + 1) + 0.5).astype(np.int64) - 1
    return (np.take_along_axis(S, q3[:, None], axis=1) - np.take_along_axis(S, q1[:, None], axis=1))[:, 0]


def mad_rows(H: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Median absolute deviation of the first ``n`` values of each row.

    >>> float(mad_rows(np.array([[1., 1, 2, 2, 4, 6, 9]]), np.array([7]))[0])
    1.0
    """
    S = _sorted_padded(H, n)
    med = _row_median(S, n)
    cols = np.arange(H.shape[1])[None, :]
    dev = np.where(cols < n[:, None], np.abs(H - med[:, None]), np.inf)
    return _row_median(np.sort(dev, axis=1), n)


class _Adaptive(OverloadDetector):
    min_history = 12

    def __init__(self, safety: float, fallback: Optional[OverloadDetector] = None) -> None:
        self.safety = float(safety)
        self.fallback = fallback or StaticThreshold(0.7)

    def overloaded(self, state: ClusterState, hosts: np.ndarray, extra_vm: int = -1) -> np.ndarray:
        hosts = np.asarray(hosts, dtype=np.int64)
        out = self.fallback.overloaded(state, hosts, extra_vm)
        if state.hist.shape[1] < self.min_history or len(hosts) == 0:
            return out
        H = host_history(state, hosts, extra_vm)
        n = trimmed_length(H)
        ok = n >= self.min_history
        if ok.any():
            out[ok] = self._decide(state, hosts[ok], extra_vm, H[ok], n[ok])
        return out

    def _decide(self, state: ClusterState, hosts: np.ndarray, extra_vm: int, H: np.ndarray,
                n: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class InterQuartileRange(_Adaptive):
    """IQR: threshold ``1 - s * IQR(history)``."""

    def __init__(self, safety: float = 1.5, fallback: Optional[OverloadDetector] = None) -> None:
        super().__init__(safety, fallback)
        self.name = f"iqr-{safety:g}"

    def _decide(self, state, hosts, extra_vm, H, n):  # type: ignore[no-untyped-def]
        return self.utilisation(state, hosts, extra_vm) > 1.0 - self.safety * iqr_rows(H, n)


class MedianAbsoluteDeviation(_Adaptive):
    """MAD: threshold ``1 - s * MAD(history)``."""

    def __init__(self, safety: float = 2.5, fallback: Optional[OverloadDetector] = None) -> None:
        super().__init__(safety, fallback)
        self.name = f"mad-{safety:g}"

    def _decide(self, state, hosts, extra_vm, H, n):  # type: ignore[no-untyped-def]
        return self.utilisation(state, hosts, extra_vm) > 1.0 - self.safety * mad_rows(H, n)


def _ols_weights(length: int, ahead: float) -> np.ndarray:
    """Weights w with ``w @ y = intercept + slope * (length + ahead)`` for y at x = 1..length."""
    x = np.arange(1, length + 1, dtype=float)
    xc = x - x.mean()
    x0 = length + ahead
    return 1.0 / length + (x0 - x.mean()) * xc / (xc @ xc)


class LocalRegression(_Adaptive):
    """LR: overloaded when ``s * predicted utilisation >= 1``.

    The prediction extrapolates a line fitted to the last 10 samples one (or more) migration
    time(s) ahead, so a host is relieved *before* it saturates.
    """

    min_history = 10
    length = 10

    def __init__(self, safety: float = 1.2, fallback: Optional[OverloadDetector] = None, *,
                 interval: float = 300.0, migration_bandwidth_mb_s: float = 62.5) -> None:
        super().__init__(safety, fallback)
        self.name = f"lr-{safety:g}"
        self.interval = interval
        self.migration_bandwidth = migration_bandwidth_mb_s
        self._weights: dict[float, np.ndarray] = {}

    def ahead(self, state: ClusterState) -> float:
        max_ram = float(state.vm_ram.max()) if state.n_vms else 0.0
        return float(max(1, math.ceil(max_ram / self.migration_bandwidth / self.interval)))

    def predict(self, state: ClusterState, H: np.ndarray) -> np.ndarray:
        """Predicted utilisation from history rows (most recent first)."""
        ahead = self.ahead(state)
        w = self._weights.get(ahead)
        if w is None:
            w = self._weights[ahead] = _ols_weights(self.length, ahead)[::-1].copy()
        return H[:, :self.length] @ w

    def _decide(self, state, hosts, extra_vm, H, n):  # type: ignore[no-untyped-def]
        return self.predict(state, H) * self.safety >= 1.0


class LocalRegressionRobust(LocalRegression):
    """LRR: LR with one bisquare re-weighting round, so one spike does not tilt the line."""

    def __init__(self, safety: float = 1.2, fallback: Optional[OverloadDetector] = None, *,
                 cloudsim: bool = False, **kw: float) -> None:
        super().__init__(safety, fallback, **kw)
        self.name = f"lrr-{safety:g}"
        self.cloudsim = cloudsim

    def predict(self, state: ClusterState, H: np.ndarray) -> np.ndarray:
        if self.cloudsim:  # CloudSim's weights are all non-zero, so its LRR is plain LR
            return super().predict(state, H)
        y = H[:, :self.length][:, ::-1]
        x = np.arange(1, self.length + 1, dtype=float)
        ahead = self.ahead(state)

        def fit(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sw = w.sum(axis=1)
            xm = (w * x).sum(axis=1) / sw
            ym = (w * y).sum(axis=1) / sw
            sxx = (w * (x - xm[:, None]) ** 2).sum(axis=1)
            b = (w * (x - xm[:, None]) * (y - ym[:, None])).sum(axis=1) / sxx
            return ym - b * xm, b

        a, b = fit(np.ones_like(y))
        r = y - (a[:, None] + b[:, None] * x)
        s6 = 6.0 * np.median(np.abs(r), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(s6[:, None] > 0, r / s6[:, None], 0.0)
        w = np.where(np.abs(u) < 1, (1 - u ** 2) ** 2, 0.0) + 1e-9
        a, b = fit(w)
        return a + b * (self.length + ahead)
