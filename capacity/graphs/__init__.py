"""Imported networks: ONNX graphs translated into trainable torch modules, checked against the graph's own semantics.

spec.py (the `graph` architecture family) · ops.py and layers.py (the operator allow-list) ·
network.py (the torch module) · onnx_wire.py, onnx_import.py (reading ONNX) · verify.py and
reference.py (comparing with onnxruntime) · fold.py (BatchNorm folding) · channels.py (which
channels structured pruning can remove).
"""
