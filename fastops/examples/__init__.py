"""Small, readable end-to-end training examples that use fastops ops and optimizers only (no torch).

* :mod:`fastops.examples.lstm_digits`: an LSTM reading each 8x8 digit image row by row (a sequence
  of 8 steps of 8 features), a linear classifier on the last hidden state, cross-entropy, Adam.
* :mod:`fastops.examples.cnn_digits`: a small CNN (conv2d + batch_norm + relu fused, max_pool2d,
  dropout, linear, cross_entropy, Adam) on the same images.

The data is scikit-learn's 8x8 handwritten digits (1797 images, shipped inside the scikit-learn
package: nothing is downloaded), an optional extra: ``pip install "fastops[examples]"``.
Run ``python -m fastops.examples.lstm_digits`` (or ``cnn_digits``) for the full training runs.
"""
