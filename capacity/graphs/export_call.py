"""The one documented way to export a PyTorch network for effcap, quoted by every error that needs it.

Training mode keeps BatchNorm as its own layer (an eval-mode export folds it into the convolutions,
and the retrained network would lose it); the symbolic batch axis lets the graph run at any batch
size. The TorchScript exporter (dynamo=False) is the one that keeps BatchNorm in training mode.
"""

ONNX_EXPORT_CALL = (
    "torch.onnx.export(model, torch.randn(2, *input_shape), 'model.onnx', dynamo=False, "
    "training=torch.onnx.TrainingMode.TRAINING, input_names=['input'], dynamic_axes={'input': {0: 'batch'}})"
)
