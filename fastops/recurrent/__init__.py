"""Recurrent family: cells (one step) and layers over sequences, forward and backward through time."""
from .cells import gru_cell, lstm_cell, rnn_cell  # noqa: F401
from .sequence import gru, lstm, rnn  # noqa: F401

__all__ = ["rnn_cell", "lstm_cell", "gru_cell", "rnn", "lstm", "gru"]
